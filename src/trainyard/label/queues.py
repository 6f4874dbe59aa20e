"""What to label next: uncertainty (least confidence, margin, entropy), diversity (k-center greedy on the item
features), a mix of the two, random, and review (labels the model doubts). Plain numpy on arrays, so the
benchmark's simulated annotators use the very same functions as the page.
"""

from __future__ import annotations

import numpy as np

from trainyard.data.audit.noise import confident_learning

MIX_POOL = 5  # the mix: k-center greedy among the 5 x batch most uncertain items


def uncertainty(proba: np.ndarray, measure: str) -> np.ndarray:
    """Higher is more uncertain. least-confidence: 1 - max p; margin: 1 - (p1 - p2); entropy: -sum p log p."""
    if measure == "least-confidence":
        return 1.0 - proba.max(axis=1)
    if measure == "margin":
        top = np.sort(proba, axis=1)[:, -2:]
        return 1.0 - (top[:, 1] - top[:, 0])
    if measure == "entropy":
        p = np.clip(proba, 1e-12, 1.0)
        return -(p * np.log(p)).sum(axis=1)
    raise ValueError(f"unknown uncertainty measure {measure!r}")


def k_center_greedy(X: np.ndarray, chosen: np.ndarray, n: int, candidates: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
    """Up to `n` candidate rows, each the farthest (Euclidean) from every row chosen so far (`chosen`: labelled rows)."""
    candidates = np.arange(len(X)) if candidates is None else np.asarray(candidates)
    if len(candidates) == 0 or n <= 0:
        return np.zeros(0, dtype=int)
    Xc = X[candidates]
    if len(chosen):
        dist = np.full(len(candidates), np.inf)
        for start in range(0, len(chosen), 1024):
            dist = np.minimum(dist, _min_distance(Xc, X[chosen[start:start + 1024]]))
    else:
        dist = np.full(len(candidates), np.inf)
        dist[np.random.default_rng(seed).integers(len(candidates))] = np.finfo(float).max  # a random first centre
    picked = []
    for _ in range(min(n, len(candidates))):
        i = int(np.argmax(dist))
        if dist[i] <= 0 and picked:
            break
        picked.append(i)
        dist = np.minimum(dist, _min_distance(Xc, Xc[i:i + 1]))
        dist[i] = -1.0
    return candidates[np.asarray(picked, dtype=int)]


def _min_distance(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    sq = (A * A).sum(1)[:, None] - 2.0 * A @ B.T + (B * B).sum(1)[None, :]
    return np.sqrt(np.maximum(sq, 0.0)).min(axis=1)


def choose(queue: str, *, pool: np.ndarray, labelled: np.ndarray, X: np.ndarray, proba: np.ndarray | None, measure: str,
           batch: int, rng: np.random.Generator) -> np.ndarray:
    """The next `batch` pool rows in `queue`'s order (uncertainty and mix need `proba`; without it, diversity)."""
    if len(pool) == 0:
        return pool
    if queue == "random":
        return rng.permutation(pool)[:batch]
    if queue in ("uncertainty", "mix") and proba is not None:
        score = uncertainty(proba[pool], measure)
        order = pool[np.argsort(-score, kind="stable")]
        if queue == "uncertainty":
            return order[:batch]
        return k_center_greedy(X, labelled, batch, candidates=order[:MIX_POOL * batch], seed=int(rng.integers(2**31)))
    return k_center_greedy(X, labelled, batch, candidates=pool, seed=int(rng.integers(2**31)))


def priorities(queue: str, *, pool: np.ndarray, labelled: np.ndarray, X: np.ndarray, proba: np.ndarray | None, measure: str,
               batch: int, seed: int, n_items: int, base: np.ndarray) -> np.ndarray:
    """A priority for every item (highest first): the queue's next `batch` pool rows on top, in order, then the
    rest by `base` (the random queue's fixed shuffle, in [0, 1))."""
    out = np.asarray(base, dtype=float).copy()
    if queue in ("random", "review"):
        return out
    order = choose(queue, pool=pool, labelled=labelled, X=X, proba=proba, measure=measure, batch=batch, rng=np.random.default_rng(seed))
    out[order] = 2.0 + (len(order) - np.arange(len(order)))
    return out


def suspects(codes: np.ndarray, oof_proba: np.ndarray) -> np.ndarray:
    """Rows (of the labelled ones) whose label the out-of-fold model doubts, most suspicious first (confident learning,
    as the audit finds label errors)."""
    if len(codes) < 10 or oof_proba.shape[1] < 2:
        return np.zeros(0, dtype=int)
    issues, _ = confident_learning(codes, oof_proba)
    return np.asarray(issues, dtype=int)
