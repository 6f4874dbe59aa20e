"""Leakage judged against the other columns: one column that alone predicts the target better than every other
column together.

The absolute cut (a column alone at balanced accuracy 0.95) misses a leak when the label itself is noisy: a 0/1
flag equal to the true outcome, on a table whose labels carry 5% noise, agrees with the label on ~93% of rows and
can never reach 0.95. What gives it away is the comparison: no other column comes close, and a model of all the
other columns together does clearly worse than the flag alone. A legitimate strong feature is one of several that
say the same thing (breast_cancer's size measurements), or it adds to a model that is better still.
"""

from __future__ import annotations

import numpy as np

from trainyard.data.audit.context import Context
from trainyard.data.audit.noise import MODEL_FEATURES, model_schema, predict_out_of_fold
from trainyard.data.audit.report import Finding
from trainyard.data.audit.target import LEAK_WARNING, association, check_leakage, encode_target
from trainyard.data.schema import Schema

RELATIVE_MIN = 0.85  # a column alone at least this good (balanced accuracy or R^2) ...
RELATIVE_MARGIN = 0.1  # ... and this much better than the best other column alone is a candidate;
MODEL_MARGIN = 0.05  # it is a leak when it alone beats a model of all the other columns by this much (out of fold)


def check_leakage_relative(ctx: Context) -> list[Finding]:
    """The leakage check: the absolute cuts (target.check_leakage), then each remaining column against the others."""
    out = check_leakage(ctx)
    if ctx.target is None or ctx.task is None:
        return out
    found = {f.column for f in out}
    scores = {name: e["score"] for name, e in association(ctx).items() if ctx.role(name) not in ("id", "ignore")}
    for name, score in scores.items():
        others = [s for c, s in scores.items() if c != name]
        if name in found or score >= LEAK_WARNING or score < RELATIVE_MIN or not others:
            continue
        best = max(others)
        if score < best + RELATIVE_MARGIN:
            continue
        together = _score_without(ctx, name)
        if together is None or score < together + MODEL_MARGIN:
            continue
        measure = "balanced accuracy" if ctx.task.is_classification else "R^2"
        out.append(Finding(
            "leakage", "warning",
            f"alone predicts the target far better than any other column ({measure} {score:.3f} out of fold; the best other "
            f"column alone {best:.3f}, a model of all the other columns together {together:.3f})",
            "one column that knows more about the outcome than everything else together is usually recorded after the "
            "outcome or derived from it (its score stays under an absolute cut when the labels themselves are noisy).",
            f"check when '{name}' is known; drop it (--ignore {name}) unless it is truly known at prediction time.",
            column=name, score=score, data={"score": score, "best_other": best, "others_together": together, "measure": measure,
                                            "rule": "relative"},
            sampled=ctx.sample_note(len(ctx.labelled(ctx.settings.model_rows)))))
    return out


def _score_without(ctx: Context, name: str) -> float | None:
    """Out-of-fold balanced accuracy (classification; each class scored against its prior, as the single-column
    scores are) or R^2 of a small LightGBM on every feature column but `name`."""
    classification = ctx.task.is_classification
    rows = ctx.labelled(ctx.settings.model_rows)
    y, classes = encode_target(rows[ctx.target], classification)
    ok = np.ones(len(y), bool) if classification else np.isfinite(y)
    rows, y = rows[ok], y[ok]
    if len(rows) < 50 or (classification and np.bincount(y).min() < 4):
        return None
    d = model_schema(ctx, MODEL_FEATURES).to_dict()
    for c in d["columns"]:
        if c["name"] == name:
            c["role"] = "ignore"
    if not [c for c in d["columns"] if c["role"] not in ("ignore", "id") and c["name"] != ctx.target]:
        return None
    out = predict_out_of_fold(ctx, rows, y, Schema.from_dict(d), classification)
    if not classification:
        sst = float(np.sum((y - y.mean()) ** 2))
        return 1 - float(np.sum((y - out) ** 2)) / sst if sst > 0 else None
    proba = out
    prior = np.bincount(y, minlength=len(classes)) / len(y)
    pred = (proba / np.maximum(prior, 1e-12)).argmax(axis=1)
    return float(np.mean([np.mean(pred[y == k] == k) for k in range(len(classes)) if np.any(y == k)]))

