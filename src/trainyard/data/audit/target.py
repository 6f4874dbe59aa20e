"""Checks that involve the target: leakage, class balance, representation of sensitive groups.

Leakage is measured, not guessed from names: every column alone is turned into
a histogram model (quantile bins for numbers and dates, frequent values for
categories, missing as its own bin) and scored out of fold. A column that alone
predicts the target almost perfectly is a leak until the user says otherwise.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from trainyard.data.audit.context import Context, fmt_values, share
from trainyard.data.audit.report import Finding
from trainyard.data.schema import as_datetime, as_numeric

LEAK_BLOCKING = 0.98  # balanced accuracy (classification) or R^2 (regression) of one column alone
LEAK_WARNING = 0.95
MONOTONE_COPY = 0.995  # |Spearman| of a numeric column with a numeric target
CLASS_WEIGHT_BELOW = 0.10  # minority share under which trainyard trains with balanced class weights
FOLDS = 5
BINS = 32


def encode_target(y: pd.Series, classification: bool) -> tuple[np.ndarray, list]:
    if classification:
        codes, uniques = pd.factorize(y.astype(str), sort=True)
        return codes, list(uniques)
    return as_numeric(y).to_numpy(dtype=float), []


def bin_codes(s: pd.Series, role: str, bins: int = BINS) -> np.ndarray:
    """Integer bin per row: quantile bins for numbers/dates, frequent values for anything else; missing is its own bin."""
    if role in ("numeric", "boolean") or (pd.api.types.is_numeric_dtype(s) and role != "categorical"):
        x = as_numeric(s).to_numpy(dtype=float)
    elif role == "datetime":
        d = as_datetime(s)
        x = (d - pd.Timestamp("1970-01-01")).dt.total_seconds().to_numpy(dtype=float)
    else:
        codes, uniques = pd.factorize(s.astype("string"), sort=False)
        if len(uniques) > 255:
            counts = np.bincount(codes[codes >= 0], minlength=len(uniques))
            keep = np.argsort(-counts)[:255]
            remap = np.full(len(uniques), 255)
            remap[keep] = np.arange(len(keep))
            codes = np.where(codes >= 0, remap[np.maximum(codes, 0)], -1)
        return np.where(codes < 0, codes.max() + 1 if len(codes) else 0, codes).astype(np.int64)
    missing = ~np.isfinite(x)
    if missing.all():
        return np.zeros(len(x), dtype=np.int64)
    edges = np.unique(np.quantile(x[~missing], np.linspace(0, 1, bins + 1)[1:-1]))
    codes = np.searchsorted(edges, np.where(missing, 0, x), side="right")
    codes[missing] = len(edges) + 1
    return codes.astype(np.int64)


def oof_score(codes: np.ndarray, y: np.ndarray, n_classes: int, seed: int = 0) -> float:
    """Out-of-fold score of a per-bin model: balanced accuracy (classification) or R^2 (regression).

    All folds at once: per (fold, bin) statistics in one bincount; a fold's model is the total minus its own part.
    """
    n = len(y)
    folds = np.random.default_rng(seed).permutation(n) % FOLDS
    n_bins = int(codes.max()) + 1
    cell = folds * n_bins + codes  # (fold, bin) of each row
    if n_classes:
        per_fold = np.bincount(cell * n_classes + y, minlength=FOLDS * n_bins * n_classes).reshape(FOLDS, n_bins, n_classes).astype(float)
        counts = per_fold.sum(axis=0, keepdims=True) - per_fold  # counts of the other folds, per fold and bin
        class_totals = counts.sum(axis=1, keepdims=True)  # (FOLDS, 1, n_classes)
        prior = class_totals / np.maximum(class_totals.sum(axis=2, keepdims=True), 1)
        probs = (counts + prior) / (counts.sum(axis=2, keepdims=True) + 1)
        # balanced accuracy rewards predicting rare classes: score each bin by class rate relative to the prior
        pred_table = (probs / np.maximum(prior, 1e-12)).argmax(axis=2)  # (FOLDS, n_bins)
        pred = pred_table[folds, codes]
        recalls = [np.mean(pred[y == k] == k) for k in range(n_classes) if np.any(y == k)]
        return float(np.mean(recalls))
    sums = np.bincount(cell, weights=y, minlength=FOLDS * n_bins).reshape(FOLDS, n_bins)
    counts = np.bincount(cell, minlength=FOLDS * n_bins).reshape(FOLDS, n_bins).astype(float)
    sums, counts = sums.sum(axis=0) - sums, counts.sum(axis=0) - counts
    fold_sum = np.bincount(folds, weights=y, minlength=FOLDS)
    fold_n = np.bincount(folds, minlength=FOLDS)
    mean = (y.sum() - fold_sum) / np.maximum(n - fold_n, 1)  # each fold's training mean
    pred = ((sums + mean[:, None]) / (counts + 1))[folds, codes]
    sst = np.sum((y - y.mean()) ** 2)
    return float(1 - np.sum((y - pred) ** 2) / sst) if sst > 0 else 0.0


def association(ctx: Context) -> dict[str, dict]:
    """Per column: the out-of-fold score of that column alone, of its missingness alone, and (regression) |Spearman|."""
    if "association" in ctx.cache:
        return ctx.cache["association"]
    classification = ctx.task is not None and ctx.task.is_classification
    rows = ctx.labelled(ctx.settings.leakage_rows)
    y, classes = encode_target(rows[ctx.target], classification)
    finite = np.isfinite(y) if not classification else np.ones(len(y), bool)
    rows, y = rows[finite], y[finite]
    result = {}
    if len(rows) < 20:
        ctx.cache["association"] = result
        return result
    for name in ctx.columns():
        role = ctx.role(name)
        if role == "text":
            continue
        s = rows[name]
        entry = {"score": oof_score(bin_codes(s, role), y, len(classes), ctx.settings.seed)}
        miss = s.isna().to_numpy()
        if 0.005 < miss.mean() < 0.995:
            entry["missing_score"] = oof_score(miss.astype(np.int64), y, len(classes), ctx.settings.seed)
            separation, what = missing_separation(miss, y, classes)
            if separation > entry["missing_score"]:
                entry["missing_score"], entry["missing_separates"] = separation, what
        if role in ("categorical", "id", "ignore") and not pd.api.types.is_numeric_dtype(s):
            determined = determines_target(s, y)
            if determined is not None:
                entry["determines"] = determined
        if not classification and role == "numeric":
            x = as_numeric(s)
            ok = x.notna().to_numpy()
            if ok.sum() > 10 and x[ok].nunique() > 2:
                entry["spearman"] = float(abs(pd.Series(x[ok].to_numpy()).corr(pd.Series(y[ok]), method="spearman")))
        result[name] = entry
    ctx.cache["association"] = result
    ctx.cache["association_rows"] = len(rows)
    return result


def determines_target(s: pd.Series, y: np.ndarray) -> dict | None:
    """When every repeated value of a text column goes with one single target value, and chance would rarely do that
    (the target has many values), the column is a recoding of the target: the histogram model cannot see it when most
    values are too rare to recur across folds (e.g. 'code_151' for a target of 151)."""
    codes, _ = pd.factorize(s)
    ok = codes >= 0
    if ok.sum() < 20:
        return None
    frame = pd.DataFrame({"g": codes[ok], "y": y[ok]})
    sizes = frame.groupby("g")["y"].agg(["size", "nunique"])
    repeated = sizes[sizes["size"] >= 2]
    if len(repeated) < 10 or repeated["size"].sum() < 0.3 * ok.sum():
        return None
    chance = float((pd.Series(y[ok]).value_counts(normalize=True) ** 2).sum())  # two random rows share a target value
    constant = float((repeated["nunique"] == 1).mean())
    if constant >= 0.99 and chance < 0.2:
        return {"groups": int(len(repeated)), "constant_share": constant, "chance": chance}
    return None


def missing_separation(miss: np.ndarray, y: np.ndarray, classes: list) -> tuple[float, str]:
    """How well being filled in singles out part of the outcome: for several classes, the best one-vs-rest balanced
    accuracy (a column filled in only for one class); for a number, the rank AUC of the target between filled and
    empty rows (a column filled in only above a threshold of the outcome). One bit of information fitted in-sample."""
    if len(classes) > 2:
        best, which = 0.0, ""
        for k, name in enumerate(classes):
            is_k = y == k
            tpr, tnr = np.mean(miss[is_k]), np.mean(~miss[~is_k])
            score = max(tpr + tnr, 2 - tpr - tnr) / 2
            if score > best:
                best, which = score, f"class {name!r}"
        return float(best), which
    if classes:
        return 0.0, ""
    ranks = pd.Series(y).rank().to_numpy()
    n1, n0 = int(miss.sum()), int((~miss).sum())
    auc = (ranks[miss].sum() - n1 * (n1 + 1) / 2) / max(n1 * n0, 1)
    return float(max(auc, 1 - auc)), "high or low values of the target"


def check_leakage(ctx: Context) -> list[Finding]:
    if ctx.target is None or ctx.task is None:
        return []
    classification = ctx.task.is_classification
    scores = association(ctx)
    measure = "balanced accuracy" if classification else "R^2"
    note = ctx.sample_note(ctx.cache.get("association_rows", ctx.n)) if ctx.n > ctx.settings.leakage_rows else None
    out = []
    for name, e in scores.items():
        score, miss, rho = e["score"], e.get("missing_score", 0.0), e.get("spearman", 0.0)
        top = max(score, miss, rho if rho >= MONOTONE_COPY else 0.0, 1.0 if e.get("determines") else 0.0)
        if top < LEAK_WARNING:
            continue
        if e.get("determines") and score < LEAK_WARNING:
            d = e["determines"]
            what = (f"each of its values goes with a single target value ({d['groups']:,} repeated values, every one with one "
                    f"target value; by chance {d['chance']:.0%} of pairs would agree): a recoding of the target")
        elif rho >= MONOTONE_COPY:
            what = f"a copy or monotone transform of the target (|Spearman| = {rho:.4f} with '{ctx.target}')"
        elif miss >= LEAK_WARNING and miss >= score - 0.01 and e.get("missing_separates"):
            how = "one-vs-rest balanced accuracy" if classification else "rank AUC"
            what = (f"whether it is filled in alone singles out {e['missing_separates']} ({how} {miss:.3f}): "
                    "it looks recorded only after the outcome is known")
        elif miss >= LEAK_WARNING and miss >= score - 0.01:
            what = (f"whether it is filled in alone predicts the target ({measure} {miss:.3f}, out of fold): "
                    "it looks recorded only after the outcome is known")
        elif score >= 0.999:
            what = f"alone predicts the target perfectly ({measure} {score:.3f}, out of fold): a copy or recoding of the target?"
        else:
            what = f"alone predicts the target almost perfectly ({measure} {score:.3f}, out of fold)"
        severity = "blocking" if top >= LEAK_BLOCKING else "warning"
        if e.get("determines") and max(score, miss, rho if rho >= MONOTONE_COPY else 0.0) < LEAK_WARNING:
            severity = "warning"  # a lookup table can be legitimate (a model name and its list price): measured on repeats only
        fix = f"drop it (--ignore {name}) unless it is truly known at prediction time; then rerun with --force."
        if ctx.role(name) in ("id", "ignore"):  # not used by training, but it says the rows are ordered or keyed by outcome
            severity, fix = "warning", ("trainyard does not train on this column, but it shows rows are keyed or ordered by the outcome: "
                                        "do not split by it, and check how the table was put together.")
        out.append(Finding("leakage", severity, what,
                           "a column this predictive is usually known only after the outcome (or derived from it); the model will look "
                           "excellent in testing and fail in use, where the column is not available yet.",
                           fix,
                           column=name, score=top, data={"score": score, "missing_score": miss, "spearman": rho, "measure": measure},
                           sampled=note))
    return out


def class_weight_for(y: pd.Series) -> str | None:
    """'balanced' when the smallest class is under CLASS_WEIGHT_BELOW of the labelled rows, else None."""
    counts = y.dropna().astype(str).value_counts()
    return "balanced" if len(counts) >= 2 and counts.iloc[-1] / counts.sum() < CLASS_WEIGHT_BELOW else None


def choose_class_weight(setting: str, task, y: pd.Series) -> str | None:
    """The class weight a run trains with: 'auto' means balanced when the smallest class is under CLASS_WEIGHT_BELOW."""
    if not task.is_classification or setting == "none":
        return None
    return "balanced" if setting == "balanced" else class_weight_for(y)


def check_class_balance(ctx: Context) -> list[Finding]:
    if ctx.target is None or ctx.task is None or not ctx.task.is_classification:
        return []
    counts = ctx.df[ctx.target].dropna().astype(str).value_counts()
    if len(counts) < 2:
        return []
    total = int(counts.sum())
    minority, majority = counts.index[-1], counts.index[0]
    min_share = counts.iloc[-1] / total
    ratio = counts.iloc[0] / counts.iloc[-1]
    data = {"counts": counts.to_dict(), "minority": minority, "minority_share": float(min_share), "ratio": float(ratio)}
    out = []
    tiny = counts[counts < 10]
    if len(tiny):
        out.append(Finding("rare_classes", "warning", f"class(es) with fewer than 10 rows: {', '.join(f'{k!r} ({v})' for k, v in tiny.items())}",
                           "a handful of examples can neither be learned nor evaluated (the test set may hold one or none).",
                           "collect more rows of these classes, merge them into a broader class, or drop them.",
                           column=ctx.target, score=1 - tiny.min() / 10, data={"classes": tiny.to_dict()}))
    if min_share < CLASS_WEIGHT_BELOW:
        out.append(Finding("class_imbalance", "warning",
                           f"imbalanced classes: {minority!r} is {share(min_share)} of rows ({counts.iloc[-1]:,} of {total:,}; {ratio:.0f}:1 against {majority!r})",
                           "accuracy rewards always predicting the majority class, and the minority is easy to under-fit.",
                           "trainyard stratifies every split by the target and trains with balanced class weights; judge the model by ROC AUC, "
                           "average precision or F1, not accuracy, and collect more minority rows if you can.",
                           column=ctx.target, score=1 - min_share, data={**data, "trainyard_does": ["stratified splits", "class_weight=balanced"]}))
    elif ratio >= 1.5:
        out.append(Finding("class_imbalance", "info",
                           f"classes are uneven: {minority!r} is {share(min_share)} of rows ({ratio:.1f}:1 against {majority!r})",
                           "mild imbalance is normal; accuracy alone can flatter a model that favours the majority.",
                           "nothing: trainyard stratifies every split by the target (class weights start below a "
                           f"{share(CLASS_WEIGHT_BELOW)} minority share).",
                           column=ctx.target, score=1 - min_share, data={**data, "trainyard_does": ["stratified splits"]}))
    return out


def check_sensitive(ctx: Context) -> list[Finding]:
    out = []
    classification = ctx.task is not None and ctx.task.is_classification
    y = ctx.df[ctx.target] if ctx.target is not None else None
    positive = None
    if y is not None and classification:
        counts = y.dropna().astype(str).value_counts()
        positive = counts.index[-1]  # the minority class: the rate people usually ask about
    for col in ctx.sensitive:
        out += _sensitive_column(ctx, col, y, classification, positive)
    return out


def _group_table(ctx: Context, s, y, classification: bool, positive) -> list[dict]:
    """Rows, share and label rate (or target mean) of each of the column's 50 largest groups."""
    table = []
    for g, n in s.value_counts().head(50).items():
        row = {"group": g, "rows": int(n), "share": float(n / ctx.n)}
        yg = y[(s == g).to_numpy()].dropna() if y is not None else ()
        if len(yg):
            row["label_rate" if classification else "target_mean"] = (float((yg.astype(str) == positive).mean()) if classification
                                                                      else float(as_numeric(yg).mean()))
        table.append(row)
    return table


def _sensitive_column(ctx: Context, col: str, y, classification: bool, positive) -> list[Finding]:
    s = ctx.df[col].astype("string").fillna("<missing>")
    n_groups = s.nunique(dropna=False)
    table = _group_table(ctx, s, y, classification, positive)
    key = "label_rate" if classification else "target_mean"
    rates = [r[key] for r in table if key in r and r["rows"] >= ctx.settings.min_group_size]

    def describe(r: dict) -> str:
        if key not in r:
            return f"{r['group']}: {r['rows']:,} rows"
        return f"{r['group']}: {r['rows']:,} rows" + (f", {r[key]:.0%} {positive!r}" if classification else f", mean {r[key]:.3g}")

    gap = ""
    if len(rates) >= 2 and max(rates) > 0:
        low, high = min(rates), max(rates)
        gap = (f"; label rates range from {low:.0%} to {high:.0%} (ratio {low / high:.2f})" if classification
               else f"; target means range from {low:.3g} to {high:.3g}")
    out = [Finding("sensitive_groups", "info", f"{n_groups} group(s): {', '.join(describe(r) for r in table[:6])}{gap}",
                   "a model is only as fair as its data: small groups get worse models and no trustworthy evaluation, "
                   "and different label rates are learned as they are.",
                   "check the per-group results in the evaluation report; collect more rows for small groups.",
                   column=col, data={"groups": table, "positive_class": positive})]
    small = [r for r in table if r["rows"] < ctx.settings.min_group_size]
    if small:
        out.append(Finding("small_groups", "warning",
                           f"group(s) too small to evaluate (under {ctx.settings.min_group_size} rows): "
                           + fmt_values([f"{r['group']} ({r['rows']})" for r in small]),
                           "with so few rows, per-group metrics are noise and the model has barely seen these people.",
                           "collect more rows for these groups, or merge them for evaluation, and say so in the model card.",
                           column=col, score=1 - min(r["rows"] for r in small) / ctx.settings.min_group_size, data={"groups": small}))
    return out
