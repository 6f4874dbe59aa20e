"""Agreement between annotators on the items two of them labelled: Cohen's kappa overall and per class (each class
against the rest), Fleiss' kappa, and the items they disagree on (queued for adjudication)."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from trainyard.label.ledger import ADJUDICATION


def pairs(annotations: list[dict]) -> list[tuple[str, str]]:
    """(first label, second label) of every item that two annotators labelled (adjudications left out)."""
    by_item: dict[int, dict[str, str]] = defaultdict(dict)
    for a in annotations:
        if a["queue"] != ADJUDICATION:
            by_item[a["item_id"]][a["annotator"]] = a["label"]
    return [tuple(list(v.values())[:2]) for v in by_item.values() if len(v) >= 2]


def cohen(a: list[str], b: list[str]) -> float | None:
    from sklearn.metrics import cohen_kappa_score

    if not a or len(set(a) | set(b)) < 2:
        return None
    value = cohen_kappa_score(a, b)
    return None if np.isnan(value) else float(value)


def fleiss(ratings: list[tuple[str, ...]], classes: list[str]) -> float | None:
    """Fleiss' kappa over items rated by the same number of annotators."""
    if not ratings:
        return None
    counts = np.array([[r.count(c) for c in classes] for r in ratings], dtype=float)
    n = counts.sum(axis=1)[0]
    if n < 2:
        return None
    p_item = ((counts * (counts - 1)).sum(axis=1)) / (n * (n - 1))
    p_class = counts.sum(axis=0) / counts.sum()
    expected = float((p_class ** 2).sum())
    if expected >= 1.0:
        return None
    return float((p_item.mean() - expected) / (1.0 - expected))


def agreement(annotations: list[dict], classes: list[str]) -> dict:
    both = pairs(annotations)
    first, second = [p[0] for p in both], [p[1] for p in both]
    per_class = {c: cohen([x == c for x in first], [x == c for x in second]) for c in classes}
    return {"items": len(both), "agreed": int(sum(x == y for x, y in both)), "cohen_kappa": cohen(first, second),
            "fleiss_kappa": fleiss(both, classes), "per_class": per_class}
