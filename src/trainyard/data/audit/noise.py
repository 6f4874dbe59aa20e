"""Label noise (confident learning with cleanlab) and rows that look like poisoning.

Both need a model's opinion of each row that the row itself did not shape:
out-of-fold class probabilities from a small LightGBM on a sample of rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from trainyard.data.audit.context import Context, share
from trainyard.data.audit.report import Finding
from trainyard.data.audit.rows import feature_columns, feature_keys
from trainyard.data.schema import FEATURE_ROLES, Schema, as_numeric

NOISE_WARNING = 0.05  # share of rows cleanlab flags above which label noise is a warning ...
NOISE_CONFIDENT = 0.2  # ... when the model gives the flagged rows' labels a median probability below this (measured:
# flipped labels on learnable tables 0.006-0.16; an outcome that is random given the columns 0.24-0.27)
POISON_CONFIDENCE = 0.2  # a repeated pattern whose label the model gives less than this probability


def model_schema(ctx: Context) -> Schema:
    """The audit's schema with the time and group columns left out (they are not features)."""
    d = ctx.schema.to_dict()
    for c in d["columns"]:
        if c["name"] in (ctx.time_col, ctx.group_col):
            c["role"] = "ignore"
    return Schema.from_dict(d)


def make_estimator(seed: int):
    """A small gradient-boosting classifier: the audit's model of each row's label."""
    try:
        from lightgbm import LGBMClassifier

        # one thread: on a shared or small machine OpenMP threads spin against each other (10x slower measured)
        return LGBMClassifier(n_estimators=80, learning_rate=0.12, num_leaves=15, min_child_samples=10, subsample=0.8,
                              subsample_freq=1, colsample_bytree=0.8, max_bin=63, random_state=seed, verbose=-1, n_jobs=1)
    except ImportError:  # lightgbm is a core dependency; keep working without it anyway
        from sklearn.ensemble import HistGradientBoostingClassifier

        return HistGradientBoostingClassifier(max_iter=100, random_state=seed)


def make_model(ctx: Context, seed: int):
    from sklearn.pipeline import Pipeline

    from trainyard.data.prepare import make_preprocessor

    return Pipeline([("prep", make_preprocessor(model_schema(ctx), "tree")), ("model", make_estimator(seed))])


def out_of_fold(ctx: Context) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, list] | None:
    """(rows, label codes, out-of-fold probabilities, class names) on a labelled sample; cached for other checks."""
    if "oof" in ctx.cache:
        return ctx.cache["oof"]
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    ctx.cache["oof"] = None
    rows = ctx.labelled(ctx.settings.model_rows)
    y = rows[ctx.target].astype(str)
    counts = y.value_counts()
    keep = counts[counts >= 5].index
    if len(keep) < 2 or not [c for c in ctx.columns(*FEATURE_ROLES)]:
        return None
    rows = rows[y.isin(keep).to_numpy()]
    codes, classes = pd.factorize(rows[ctx.target].astype(str), sort=True)
    from trainyard.data.prepare import make_preprocessor

    # the tree preprocessing learns no labels (types, frequent categories), so it is fitted once, not per fold
    X = make_preprocessor(model_schema(ctx), "tree").fit_transform(rows)
    folds = StratifiedKFold(n_splits=4, shuffle=True, random_state=ctx.settings.seed)
    proba = cross_val_predict(make_estimator(ctx.settings.seed), X, codes, cv=folds, method="predict_proba")
    ctx.cache["oof"] = (rows, codes, proba, list(classes))
    return ctx.cache["oof"]


def check_label_noise(ctx: Context) -> list[Finding]:
    if ctx.target is None or ctx.task is None or not ctx.task.is_classification or not ctx.settings.label_noise:
        return []
    oof = out_of_fold(ctx)
    if oof is None:
        return []
    rows, codes, proba, classes = oof
    try:
        from cleanlab.filter import find_label_issues

        issues = find_label_issues(codes, proba, filter_by="prune_by_noise_rate", return_indices_ranked_by="self_confidence")
        method = "confident learning (cleanlab) on out-of-fold probabilities of a LightGBM model"
    except ImportError:
        given = proba[np.arange(len(codes)), codes]
        issues = np.where((given < 0.1) & (proba.argmax(axis=1) != codes))[0]
        issues = issues[np.argsort(given[issues])]
        method = "rows whose label gets under 10% out-of-fold probability (install trainyard[audit] for cleanlab's confident learning)"
    n_issues = len(issues)
    if not n_issues:
        return []
    frac = n_issues / len(rows)
    given = proba[np.arange(len(codes)), codes]
    median_p = float(np.median(given[issues]))
    examples = [{"row": rows.index[i].item() if hasattr(rows.index[i], "item") else rows.index[i], "label": classes[codes[i]],
                 "predicted": classes[int(proba[i].argmax())], "label_probability": float(given[i])} for i in issues[:20]]
    sampled = f"{method}; {len(rows):,} of {ctx.n:,} rows" if len(rows) < ctx.n else method
    confident = median_p <= NOISE_CONFIDENT
    what = f"{n_issues:,} rows ({share(frac)}) have labels that disagree with out-of-fold predictions"
    what += " (likely mislabelled)" if confident else (" (the model is unsure about them: genuine uncertainty in the outcome, "
                                                       "or mislabelled rows)")
    return [Finding("label_noise", "warning" if frac >= NOISE_WARNING and confident else "info", what,
                    "wrong labels teach the model wrong answers and make test scores unreliable.",
                    "review the listed rows (most suspicious first) and fix their labels, or drop them.",
                    column=ctx.target, score=frac, data={"rows": n_issues, "share": frac, "median_label_probability": median_p, "examples": examples}, sampled=sampled)]


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
        z = ctx.robust_z(name, values[ok])  # median and spread from the row sample (shared with the outlier check)
        extreme = (z > 10).to_numpy()
        m = int(extreme.sum())
        if m < 5 or m > 0.05 * ok.sum():
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
