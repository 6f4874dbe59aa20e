"""The no-answer threshold: below it, `ask` says "no relevant passage found" instead of answering.

The score compared is the cosine of the query and its best passage (dense, unit vectors: comparable across
queries, unlike fused ranks or BM25 scores). It is calibrated on the index itself, with no labels:

1. up to `n` passages are drawn (seeded); from each, a pseudo-query is cut: a window of `words` words from
   one of its sentences (question-length, not the whole sentence, so the match is not verbatim-easy);
2. "answerable" score: the best cosine over the whole index (the passage that holds the answer is there);
3. "unanswerable" score: the best cosine with every passage of the query's own document removed (a question
   the corpus does not cover, though neighbouring documents may be on related topics: a hard negative);
4. the threshold is the cut that maximises balanced accuracy between the two (Youden's J).

With fewer than two documents or ten pseudo-queries there is nothing to calibrate on and the default
(cosine 0.3) is used; the index metadata says which. `trainyard evaluate` reports how the threshold does on
labelled queries, and `ask --threshold` overrides it.
"""

from __future__ import annotations

import numpy as np

from trainyard.rag.chunking import split_sentences

DEFAULT_THRESHOLD = 0.3


def pseudo_queries(index, n: int = 200, words: int = 8, seed: int = 0) -> list[tuple[str, str]]:
    """[(query text, source path)] from up to n passages."""
    rng = np.random.default_rng(seed)
    picks = rng.permutation(len(index.chunks))[: n * 2]
    out = []
    for i in picks:
        chunk = index.chunks[int(i)]
        sentences = [s.split() for s in split_sentences(chunk.text) if len(s.split()) >= 5]
        if not sentences:
            continue
        sent = sentences[int(rng.integers(len(sentences)))]
        start = int(rng.integers(max(1, len(sent) - words + 1)))
        out.append((" ".join(sent[start:start + words]), chunk.path))
        if len(out) >= n:
            break
    return out


def calibrate(index, encoder, n: int = 200, seed: int = 0) -> dict:
    """{"threshold", "method", "queries", "answerable_median", "unanswerable_median", "balanced_accuracy"}."""
    paths = {c.path for c in index.chunks}
    queries = pseudo_queries(index, n=n, seed=seed) if len(paths) >= 2 else []
    if len(queries) < 10:
        return {"threshold": DEFAULT_THRESHOLD, "method": "default (too few documents or passages to calibrate)", "queries": len(queries)}
    vectors = encoder.encode([q for q, _ in queries])
    path_of = np.array([c.path for c in index.chunks], dtype=object)
    pos, neg = [], []
    for (_, path), v in zip(queries, vectors):
        scores = index.vectors @ v
        pos.append(float(scores.max()))
        others = scores[path_of != path]
        neg.append(float(others.max()) if len(others) else -1.0)
    pos, neg = np.array(pos), np.array(neg)
    cuts = np.unique(np.concatenate([pos, neg]))
    accuracy = np.array([((pos >= c).mean() + (neg < c).mean()) / 2 for c in cuts])
    best = int(np.argmax(accuracy))
    threshold = float(cuts[best])
    return {"threshold": round(threshold, 4), "method": "pseudo-queries with and without their own document (Youden's J)",
            "queries": len(queries), "answerable_median": round(float(np.median(pos)), 4),
            "unanswerable_median": round(float(np.median(neg)), 4), "balanced_accuracy": round(float(accuracy[best]), 4)}
