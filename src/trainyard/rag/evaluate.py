"""Retrieval and answer quality on labelled queries: `trainyard evaluate NAME --queries q.jsonl`.

Each JSONL line: {"query": "...", "relevant_ids": [...]} (passage ids) or {"query": "...", "relevant_paths": [...]}
(source documents; a document counts once, at the rank of its best passage), optionally "answer" (a reference
answer: exact match and token F1 of the produced answer). A query with empty relevance lists is one the corpus
cannot answer: it scores the no-answer threshold. For hybrid, BM25 alone and dense alone: recall@k, MRR@10 and
nDCG@10 (binary gains), each with a 95% percentile-bootstrap interval over queries; for the answers: the share
answered, the share of answer sentences supported by a passage they cite, EM/F1.
"""

from __future__ import annotations

import json
import re
import string
from collections import Counter
from pathlib import Path

import numpy as np

from trainyard.errors import DataError
from trainyard.rag.answer import ask, supported_share
from trainyard.rag.index import MODES

DEPTH = 10


def read_queries(path: Path) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} does not exist.", "pass a JSONL file: one {\"query\": ..., \"relevant_paths\": [...]} per line.")
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path} line {n} is not JSON ({exc.msg}).", "write one JSON object per line.") from None
        query = row.get("query") or row.get("question") if isinstance(row, dict) else None
        if not isinstance(query, str) or not query.strip():
            raise DataError(f"{path} line {n} has no \"query\" text.", "give each line a \"query\" string.")
        ids, paths = _as_list(row.get("relevant_ids")), _as_list(row.get("relevant_paths", row.get("relevant_path")))
        out.append({"query": query, "ids": ids, "paths": paths, "answer": row.get("answer")})
    if not out:
        raise DataError(f"{path} holds no queries.", "add one JSON object per line.")
    return out


def _as_list(value) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in (value if isinstance(value, list) else [value])]


def ranked_units(hits, by_ids: bool) -> list[str]:
    """The ranked list of retrieved units: passage ids, or source paths (each document once, first rank)."""
    units = [h.chunk.id if by_ids else h.chunk.path for h in hits]
    return list(dict.fromkeys(units))


def query_metrics(units: list[str], relevant: set[str], k: int) -> dict:
    hits = [u in relevant for u in units]
    first = next((i for i, h in enumerate(hits[:DEPTH]) if h), None)
    dcg = sum(1.0 / np.log2(i + 2) for i, h in enumerate(hits[:DEPTH]) if h)
    idcg = sum(1.0 / np.log2(i + 2) for i in range(min(len(relevant), DEPTH)))
    return {f"recall@{k}": sum(hits[:k]) / len(relevant), "mrr@10": 0.0 if first is None else 1.0 / (first + 1),
            "ndcg@10": dcg / idcg if idcg else 0.0}


def bootstrap(values: np.ndarray, n_boot: int = 1000, seed: int = 0) -> tuple[float, float]:
    """95% percentile interval of the mean over resampled queries."""
    if len(values) < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(n_boot, len(values)))].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def evaluate_retrieval(retriever, queries: list[dict], *, k: int = 10, modes=MODES, path: str | None = None,
                       n_boot: int = 1000, seed: int = 0) -> dict:
    """{mode: {metric: {"value", "ci_low", "ci_high"}}} over the answerable queries."""
    labelled = [q for q in queries if q["ids"] or q["paths"]]
    if not labelled:
        return {}
    vectors = retriever.embed([q["query"] for q in labelled])
    out = {}
    for mode in modes:
        rows = []
        for q, v in zip(labelled, vectors):
            hits = retriever.search(q["query"], k=max(k, DEPTH), mode=mode, path=path, vector=v)
            by_ids = bool(q["ids"])
            rows.append(query_metrics(ranked_units(hits, by_ids), set(q["ids"] if by_ids else q["paths"]), k))
        out[mode] = {}
        for name in rows[0]:
            values = np.array([r[name] for r in rows], dtype=float)
            low, high = bootstrap(values, n_boot, seed)
            out[mode][name] = {"value": float(values.mean()), "ci_low": low, "ci_high": high}
    return out


def normalize_answer(text: str) -> list[str]:
    text = re.sub(r"\[[0-9a-f]{16}\]|\[\d{1,2}\]", " ", text.lower())
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    return [w for w in text.split() if w not in ("a", "an", "the")]


def exact_f1(prediction: str, reference: str) -> tuple[float, float]:
    p, r = normalize_answer(prediction), normalize_answer(reference)
    em = float(p == r)
    common = sum((Counter(p) & Counter(r)).values())
    if not common:
        return em, 0.0
    precision, recall = common / len(p), common / len(r)
    return em, 2 * precision * recall / (precision + recall)


def evaluate_answers(retriever, queries: list[dict], *, k: int = 5, generator=None, threshold: float | None = None,
                     n_boot: int = 1000, seed: int = 0) -> dict:
    """Answered share, support share, no-answer accuracy on unanswerable queries, EM/F1 against references."""
    answered, support, refused_right, em, f1 = [], [], [], [], []
    for q in queries:
        a = ask(retriever, q["query"], k=k, generator=generator, threshold=threshold)
        answerable = bool(q["ids"] or q["paths"])
        (answered if answerable else refused_right).append(float(a.answered if answerable else not a.answered))
        share = supported_share(a)
        if share is not None:
            support.append(share)
        if q.get("answer"):
            e, f = exact_f1(a.text if a.answered else "", str(q["answer"]))
            em.append(e)
            f1.append(f)

    def stat(values):
        if not values:
            return None
        arr = np.asarray(values, dtype=float)
        low, high = bootstrap(arr, n_boot, seed)
        return {"value": float(arr.mean()), "ci_low": low, "ci_high": high, "n": len(arr)}

    return {"answered_share": stat(answered), "supported_share": stat(support), "no_answer_accuracy": stat(refused_right),
            "exact_match": stat(em), "f1": stat(f1), "method": "generated" if generator else "extractive",
            "threshold": retriever.threshold if threshold is None else threshold}


def evaluate_index(retriever, queries_path: Path, *, k: int = 10, answer_k: int = 5, generator=None, answers: bool = True,
                   n_boot: int = 1000, seed: int = 0) -> dict:
    queries = read_queries(queries_path)
    report = {"index": retriever.ref, "queries": len(queries), "answerable": sum(bool(q["ids"] or q["paths"]) for q in queries),
              "k": k, "encoder": retriever.index.meta["encoder"], "calibration": retriever.index.meta.get("calibration"),
              "retrieval": evaluate_retrieval(retriever, queries, k=k, n_boot=n_boot, seed=seed)}
    if answers:
        report["answers"] = evaluate_answers(retriever, queries, k=answer_k, generator=generator, n_boot=n_boot, seed=seed)
    return report
