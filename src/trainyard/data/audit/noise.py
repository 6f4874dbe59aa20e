"""Label noise (confident learning with cleanlab) and rows that look like poisoning.

Both need a model's opinion of each row that the row itself did not shape:
out-of-fold class probabilities from a small LightGBM on a sample of rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from trainyard.data.audit.context import Context, fmt_values, share
from trainyard.data.audit.report import Finding
from trainyard.data.audit.rows import feature_columns, feature_keys
from trainyard.data.audit.target import association
from trainyard.data.schema import FEATURE_ROLES, Schema, as_numeric

NOISE_SIGNAL = 0.65  # out-of-fold balanced accuracy under which the columns barely predict the target: no estimate
NOISE_ANCHORS = 0.05  # per class, this share of the rows (at least NOISE_ANCHOR_MIN) the model is surest belong to it ...
NOISE_ANCHOR_MIN = 20
NOISE_ANCHOR_P = 0.75  # ... are that class's anchors when the model gives them this probability on average
NOISE_FLOOR = 0.01  # label noise is a warning when the estimated rate of flipped labels is above this with 95% confidence
# (measured, benchmarks/audit/calibrate.py: clean Adult, churn, breast_cancer, wine, digits 0-0.5%; 2% flips 2-3%)
RESIDUAL_Z = 4.0  # regression: out-of-fold residuals beyond this many robust SDs are suspicious target values ...
RESIDUAL_WARNING = 0.01  # ... and a warning when at least this share of rows (and 5 rows) are
RESIDUAL_FLOOR = 0.25  # the residual scale is at least this share of the target's robust SD
POISON_CONFIDENCE = 0.2  # a repeated pattern whose label the model gives less than this probability
MODEL_FEATURES = 100  # the label-noise model uses at most this many columns (the most predictive alone)


def model_schema(ctx: Context, max_features: int | None = None) -> Schema:
    """The audit's schema with the time and group columns left out (they are not features); with `max_features`,
    only that many feature columns are kept on a wide table: those that predict the target best alone (the leakage
    check's single-column scores), so the model's cost does not grow with hundreds of columns."""
    d = ctx.schema.to_dict()
    keep = None
    features = [c["name"] for c in d["columns"] if c["role"] in FEATURE_ROLES and c["name"] != ctx.target]
    if max_features is not None and len(features) > max_features:
        scores = association(ctx)
        keep = set(sorted(features, key=lambda c: -scores.get(c, {}).get("score", 0.0))[:max_features])
    for c in d["columns"]:
        if c["name"] in (ctx.time_col, ctx.group_col) or (keep is not None and c["name"] in features and c["name"] not in keep):
            c["role"] = "ignore"
    return Schema.from_dict(d)


def feature_note(ctx: Context) -> str:
    n = len([c for c in ctx.columns(*FEATURE_ROLES)])
    return f"; the {MODEL_FEATURES} columns that predict the target best alone, of {n}" if n > MODEL_FEATURES else ""


def make_estimator(seed: int, regression: bool = False):
    """A small gradient-boosting model: the audit's opinion of each row's label (or target value)."""
    try:
        import lightgbm

        cls = lightgbm.LGBMRegressor if regression else lightgbm.LGBMClassifier
        # one thread: on a shared or small machine OpenMP threads spin against each other (10x slower measured)
        return cls(n_estimators=80, learning_rate=0.12, num_leaves=15, min_child_samples=10, subsample=0.8,
                   subsample_freq=1, colsample_bytree=0.8, max_bin=63, random_state=seed, verbose=-1, n_jobs=1)
    except ImportError:  # lightgbm is a core dependency; keep working without it anyway
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

        return (HistGradientBoostingRegressor if regression else HistGradientBoostingClassifier)(max_iter=100, random_state=seed)


def make_model(ctx: Context, seed: int):
    from sklearn.pipeline import Pipeline

    from trainyard.data.prepare import make_preprocessor

    return Pipeline([("prep", make_preprocessor(model_schema(ctx), "tree")), ("model", make_estimator(seed))])


def predict_out_of_fold(ctx: Context, rows: pd.DataFrame, y: np.ndarray, schema: Schema, classification: bool) -> np.ndarray:
    """4-fold out-of-fold class probabilities (stratified) or values of the audit's small LightGBM on `schema`'s
    feature columns. The tree preprocessing learns no labels (types, frequent categories), so it is fitted once, not
    per fold."""
    from sklearn.model_selection import KFold, StratifiedKFold, cross_val_predict

    from trainyard.data.prepare import make_preprocessor

    X = make_preprocessor(schema, "tree").fit_transform(rows)
    seed = ctx.settings.seed
    if classification:
        folds = StratifiedKFold(n_splits=4, shuffle=True, random_state=seed)
        return cross_val_predict(make_estimator(seed), X, y, cv=folds, method="predict_proba")
    return cross_val_predict(make_estimator(seed, regression=True), X, y, cv=KFold(n_splits=4, shuffle=True, random_state=seed))


def out_of_fold(ctx: Context) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, list] | None:
    """(rows, label codes, out-of-fold probabilities, class names) on a labelled sample; cached for other checks."""
    if "oof" in ctx.cache:
        return ctx.cache["oof"]
    ctx.cache["oof"] = None
    rows = ctx.labelled(ctx.settings.model_rows)
    y = rows[ctx.target].astype(str)
    counts = y.value_counts()
    keep = counts[counts >= 5].index
    if len(keep) < 2 or not [c for c in ctx.columns(*FEATURE_ROLES)]:
        return None
    rows = rows[y.isin(keep).to_numpy()]
    codes, classes = pd.factorize(rows[ctx.target].astype(str), sort=True)
    proba = predict_out_of_fold(ctx, rows, codes, model_schema(ctx, MODEL_FEATURES), classification=True)
    ctx.cache["oof"] = (rows, codes, proba, list(classes))
    return ctx.cache["oof"]


def confident_learning(codes: np.ndarray, proba: np.ndarray) -> tuple[np.ndarray, str]:
    """Indices of rows whose given label is likely wrong, most suspicious first, and how they were found.

    cleanlab's confident learning when it is installed; otherwise the same idea by hand: a row is confidently of
    class j when its out-of-fold probability of j reaches j's threshold (the mean probability of j among rows
    labelled j); rows confidently of another class than their label are the issues (the confident joint's
    off-diagonal), ranked by the probability the model gives their label.
    """
    given = proba[np.arange(len(codes)), codes]
    try:
        from cleanlab.filter import find_label_issues
    except ImportError:
        k = proba.shape[1]
        thresholds = np.array([proba[codes == j, j].mean() if np.any(codes == j) else 1.0 for j in range(k)])
        above = proba >= thresholds - 1e-12
        confident_class = np.where(above, proba, -1.0).argmax(axis=1)
        issues = np.flatnonzero(above.any(axis=1) & (confident_class != codes))
        return issues[np.argsort(given[issues], kind="stable")], "confident learning (the confident joint, computed by trainyard; " \
            "install trainyard[audit] for cleanlab)"
    # n_jobs=1: cleanlab otherwise forks a process pool, and a fork of a threaded process (the labelling server's
    # retrain thread) can leave children deadlocked on a lock copied mid-use, outliving the server that made them
    issues = find_label_issues(codes, proba, filter_by="prune_by_noise_rate", return_indices_ranked_by="self_confidence", n_jobs=1)
    return np.asarray(issues, dtype=int), "confident learning (cleanlab)"


def noise_rate(codes: np.ndarray, proba: np.ndarray) -> dict | None:
    """The share of labels that look flipped, estimated on anchor rows; None when no class has anchors.

    A class's anchors are the rows the out-of-fold model is surest belong to it (the top NOISE_ANCHORS of rows by
    its probability, when the model gives them NOISE_ANCHOR_P or more on average). On clean data their labels agree
    almost always (that is what being sure means), whatever the rest of the table's uncertainty: the outcome's
    own chance (Bayes error) lives between the classes, not in their cores. A flipped label lands anywhere, anchors
    included, so the anchors' disagreement rate estimates the flip rate. What this cannot tell apart: a class with no
    confident core (every churner looks like some non-churner) from a class whose labels were flipped; such a class's
    anchors disagree far more than the others' (binomial p < 0.001 under the others' pooled rate, or NOISE_FLOOR if
    higher) and are left out,
    so the estimate assumes flips hit the classes alike. Returns the pooled rate, its one-sided 95% lower bound
    (Clopper-Pearson), the anchor rows and disagreements counted, and the classes used.
    """
    from scipy.stats import beta, binom

    n, k = proba.shape
    size = max(int(NOISE_ANCHORS * n), NOISE_ANCHOR_MIN)
    per_class = {}
    for j in range(k):
        top = np.argsort(-proba[:, j], kind="stable")[:size]
        if len(top) >= NOISE_ANCHOR_MIN and proba[top, j].mean() >= NOISE_ANCHOR_P:
            per_class[j] = (len(top), int(np.sum(codes[top] != j)))
    while len(per_class) > 1:  # leave out a class whose anchors disagree far more than the others' (no confident core)
        worst = max(per_class, key=lambda j: per_class[j][1] / per_class[j][0])
        rest_n = sum(v[0] for j, v in per_class.items() if j != worst)
        rest_x = sum(v[1] for j, v in per_class.items() if j != worst)
        m, x = per_class[worst]
        if binom.sf(x - 1, m, max(rest_x / rest_n, NOISE_FLOOR)) >= 0.001:
            break
        del per_class[worst]
    if not per_class:
        return None
    m = sum(v[0] for v in per_class.values())
    x = sum(v[1] for v in per_class.values())
    low = float(beta.ppf(0.05, x, m - x + 1)) if x else 0.0
    return {"rate": x / m, "low": low, "anchors": m, "disagree": x, "classes": sorted(per_class)}


def check_label_noise(ctx: Context) -> list[Finding]:
    if ctx.target is None or ctx.task is None or not ctx.settings.label_noise:
        return []
    if not ctx.task.is_classification:
        return _regression_noise(ctx)
    oof = out_of_fold(ctx)
    if oof is None:
        return []
    rows, codes, proba, classes = oof
    issues, method = confident_learning(codes, proba)
    method += " on 4-fold out-of-fold probabilities of a small LightGBM model" + feature_note(ctx)
    n_issues = len(issues)
    if not n_issues:
        return []
    frac = n_issues / len(rows)
    given = proba[np.arange(len(codes)), codes]
    median_p = float(np.median(given[issues]))
    examples = [{"row": _label(rows.index[i]), "label": classes[codes[i]],
                 "predicted": classes[int(proba[i].argmax())], "label_probability": float(given[i])} for i in issues[:20]]
    signal = float(np.mean([np.mean(proba[codes == k].argmax(axis=1) == k) for k in range(len(classes)) if np.any(codes == k)]))
    est = noise_rate(codes, proba) if signal >= NOISE_SIGNAL else None
    what = f"{n_issues:,} rows ({share(frac)}) have labels that disagree with out-of-fold predictions"
    if signal < NOISE_SIGNAL:
        what += f"; the columns barely predict the target (balanced accuracy {signal:.2f}), so disagreement is expected"
    elif est is None:
        what += "; no class has rows the model is sure of, so flipped labels cannot be told apart from an outcome that is partly chance"
    else:
        found = (f"{share(est['rate'])} carry another label (at least {share(est['low'])} with 95% confidence)" if est["disagree"]
                 else "none carries another label")
        left = [classes[j] for j in range(len(classes)) if j not in est["classes"]]
        if left and len(left) <= 5:
            found += f" ({fmt_values(left)} left out: even the rows surest of it often carry another label, a class without a sure core)"
        what += (f"; of the {est['anchors']:,} rows the model is surest about, {found}, where clean labels almost always agree: "
                 + ("about that share of all labels look flipped" if est["low"] >= NOISE_FLOOR else
                    "the rest of the disagreement is the outcome's own uncertainty"))
    # a warning needs evidence of flipped labels beyond the outcome's own chance: disagreement among the rows the
    # model is surest about (anchors), above NOISE_FLOOR with 95% confidence
    severity = "warning" if est is not None and est["low"] >= NOISE_FLOOR else "info"
    data = {"rows": n_issues, "share": frac, "median_label_probability": median_p, "model_balanced_accuracy": signal,
            "method": method, "examples": examples}
    if est is not None:
        data.update(noise_rate=est["rate"], noise_rate_low=est["low"], noise_floor=NOISE_FLOOR, anchor_rows=est["anchors"],
                    anchor_classes=[classes[j] for j in est["classes"]])
    return [Finding("label_noise", severity, what,
                    "wrong labels teach the model wrong answers and make test scores unreliable.",
                    "review the listed rows (most suspicious first) and fix their labels, or drop them.",
                    column=ctx.target, score=frac, data=data, sampled=_model_note(ctx, method, len(rows)))]


def _label(value):
    return value.item() if hasattr(value, "item") else value


def _model_note(ctx: Context, method: str, rows: int) -> str:
    return f"{method}; on a random sample of {rows:,} of {ctx.n:,} rows" if rows < ctx.n else method


def out_of_fold_regression(ctx: Context) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, bool] | None:
    """(rows, target on the model's scale, out-of-fold predictions, log scale?) on a labelled sample."""
    rows = ctx.labelled(ctx.settings.model_rows)
    y = as_numeric(rows[ctx.target])
    ok = np.isfinite(y.to_numpy())
    rows, y = rows[ok], y[ok]
    if len(rows) < 50 or y.nunique() < 3 or not ctx.columns(*FEATURE_ROLES):
        return None
    log = bool(y.min() >= 0 and y.skew() > 2)  # a long right tail (prices, incomes): residuals on a log scale
    target = np.log1p(y.to_numpy()) if log else y.to_numpy()
    pred = predict_out_of_fold(ctx, rows, target, model_schema(ctx, MODEL_FEATURES), classification=False)
    return rows, target, pred, log


def _regression_noise(ctx: Context) -> list[Finding]:
    """Target values far from what the other columns predict out of fold (residual outliers): entry errors, unit
    mistakes, values shifted from another row."""
    oof = out_of_fold_regression(ctx)
    if oof is None:
        return []
    rows, target, pred, log = oof
    resid = target - pred
    centre = float(np.median(resid))
    scale = 1.4826 * float(np.median(np.abs(resid - centre)))
    q1, q3 = np.percentile(target, [25, 75])
    # a residual must also be large next to the target's own spread: on a near-deterministic target the typical
    # residual is tiny and the model's own misses (trees do not extrapolate) would otherwise look like bad labels
    scale = max(scale, RESIDUAL_FLOOR * (q3 - q1) / 1.349)
    if scale <= 0:
        return []
    z = np.abs(resid - centre) / scale
    issues = np.flatnonzero(z > RESIDUAL_Z)
    if not len(issues):
        return []
    issues = issues[np.argsort(-z[issues], kind="stable")]
    frac = len(issues) / len(rows)
    back = np.expm1 if log else (lambda v: v)
    examples = [{"row": _label(rows.index[i]), "value": float(back(target[i])), "predicted": float(back(pred[i])),
                 "robust_z": float(z[i])} for i in issues[:20]]
    method = (f"out-of-fold residuals of a small LightGBM model (4 folds{', log scale' if log else ''}{feature_note(ctx)}); rows more than "
              f"{RESIDUAL_Z:g} robust standard deviations (MAD) from the typical residual")
    return [Finding("label_noise", "warning" if frac >= RESIDUAL_WARNING and len(issues) >= 5 else "info",
                    f"{len(issues):,} rows ({share(frac)}) have target values far from what the other columns predict out of fold "
                    f"(residuals beyond {RESIDUAL_Z:g} robust SDs): likely entry errors",
                    "wrong target values pull a regression model towards them (squared error weighs them heavily) and distort test scores.",
                    "review the listed rows (largest residual first): fix the values (units, typos) or drop the rows.",
                    column=ctx.target, score=frac, data={"rows": len(issues), "share": frac, "residual_scale": scale, "method": method,
                                                         "log_scale": log, "examples": examples},
                    sampled=_model_note(ctx, method, len(rows)))]


def check_poisoning(ctx: Context) -> list[Finding]:
    if ctx.target is None or ctx.task is None or not ctx.task.is_classification:
        return []
    return _repeated_flipped(ctx) + _extremes_in_one_class(ctx)


def _repeated_flipped(ctx: Context) -> list[Finding]:
    """Exact repeats (3+ copies with one label) of an otherwise rare feature pattern whose label contradicts similar rows."""
    features = feature_columns(ctx)
    if not features:
        return []
    labelled = ctx.labelled_frame()
    keys = feature_keys(ctx)
    counts = keys.value_counts()
    repeated = counts[counts >= 3]
    if repeated.empty or repeated.sum() > 0.1 * len(labelled):
        return []  # no repeats, or repeats are normal for this table (few distinct feature patterns)
    in_groups = keys.isin(repeated.index).to_numpy()
    y = labelled[ctx.target].astype(str)
    grouped = pd.DataFrame({"key": keys[in_groups], "y": y[in_groups]})
    top = grouped.groupby(["key", "y"]).size().rename("copies").reset_index().sort_values("copies", ascending=False)
    labels = top.drop_duplicates("key").set_index("key").rename(columns={"y": "first"})  # each pattern's majority label
    labels["size"] = labels["copies"]
    single = labels[labels["copies"] >= 3].sort_values("size", ascending=False).head(200)
    if single.empty:
        return []
    rest = labelled[~in_groups]
    rest = rest if len(rest) <= ctx.settings.model_rows else rest.sample(ctx.settings.model_rows, random_state=ctx.settings.seed)
    rest_y = rest[ctx.target].astype(str)
    if rest_y.nunique() < 2:
        return []
    classes = sorted(rest_y.unique())
    model = make_model(ctx, ctx.settings.seed).fit(rest, pd.Categorical(rest_y, categories=classes).codes)
    first_rows = labelled[in_groups].assign(_key=keys[in_groups].to_numpy()).drop_duplicates("_key").set_index("_key")
    reps = first_rows.loc[single.index]
    proba = model.predict_proba(reps[labelled.columns])
    out = []
    suspicious = []
    for i, key in enumerate(single.index):
        label = single.loc[key, "first"]
        p = float(proba[i, classes.index(label)]) if label in classes else 0.0
        if p < POISON_CONFIDENCE:
            idx = keys.index[(keys == key).to_numpy()][:10].tolist()
            suspicious.append({"rows": idx, "copies": int(single.loc[key, "size"]), "label": label,
                               "model_says": classes[int(proba[i].argmax())], "label_probability": p})
    if suspicious:
        n_rows = sum(s["copies"] for s in suspicious)
        out.append(Finding("poisoning", "warning",
                           f"{len(suspicious)} feature pattern(s) repeated 3+ times ({n_rows} rows) carry a label that similar rows contradict",
                           "exact repeats of a rare pattern with a flipped label are how training data is poisoned (or how a "
                           "scripted bulk upload goes wrong); the model learns the planted answer.",
                           "look at where these rows came from; drop them unless the source is trusted.",
                           column=ctx.target, score=n_rows / len(labelled), data={"patterns": suspicious[:20]},
                           sampled=f"reference model fitted on {len(rest):,} rows outside the repeated patterns"))
    return out


def _extremes_in_one_class(ctx: Context) -> list[Finding]:
    """Isolated extreme values (far beyond the bulk) that almost all carry one label: a planted trigger or an artefact."""
    labelled = ctx.labelled_frame()
    y = labelled[ctx.target].astype(str)
    base = y.value_counts(normalize=True)
    out = []
    everything = len(labelled) == ctx.n
    present = None if everything else ctx.df[ctx.target].notna().to_numpy()
    for name in ctx.columns("numeric"):
        values = ctx.numeric(name) if everything else ctx.numeric(name)[present]
        ok = values.notna().to_numpy()
        if ok.sum() < 50:
            continue
        extreme = (ctx.robust_z(name, values[ok]) > 10).to_numpy()  # median and spread from the row sample
        m = int(extreme.sum())
        if m < 5 or m > 0.1 * ok.sum():
            continue
        dist = y[ok][extreme].value_counts(normalize=True)
        top, top_share = dist.index[0], float(dist.iloc[0])
        if top_share >= 0.9 and base[top] <= 0.5:
            out.append(Finding("poisoning", "warning",
                               f"{m} extreme values (over 10 robust standard deviations out) are {share(top_share)} labelled {top!r}, "
                               f"a class that is {share(float(base[top]))} of all rows",
                               "isolated extreme values that all carry one label look like a planted trigger (a backdoor) or a "
                               "data-collection artefact; a model will learn 'extreme value means this class'.",
                               "check where these rows come from; fix or drop them if the values are not real.",
                               column=name, score=m / len(labelled),
                               data={"rows": m, "label": top, "label_share": top_share, "base_rate": float(base[top]),
                                     "examples": values[ok][extreme].index[:10].tolist()}))
    return out

