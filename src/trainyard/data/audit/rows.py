"""Checks across rows: exact duplicates, duplicates with conflicting labels, near-duplicates."""

from __future__ import annotations

import numpy as np
import pandas as pd

from trainyard.data.audit.context import Context, column_hash, combine_hashes, row_hash, share
from trainyard.data.audit.report import Finding


def feature_columns(ctx: Context) -> list[str]:
    """Columns that describe a row (not the target, not identifiers): two rows equal on these are the same example."""
    return [c for c in ctx.df.columns if c != ctx.target and ctx.role(c) != "id"]


def row_keys(ctx: Context) -> tuple[np.ndarray, np.ndarray]:
    """(hash of every whole row, hash of every row's feature columns): one pass over the columns, computed once."""
    if "row_keys" not in ctx.cache:
        features = set(feature_columns(ctx))
        whole = part = None
        for i, name in enumerate(ctx.df.columns):
            h = column_hash(ctx.df.iloc[:, i])
            if name in features:
                part = combine_hashes(part, h, i)
            whole = combine_hashes(whole, h, i)
        empty = np.zeros(ctx.n, dtype=np.uint64)
        ctx.cache["row_keys"] = (empty if whole is None else whole, empty if part is None else part)
    return ctx.cache["row_keys"]


def feature_keys(ctx: Context) -> pd.Series:
    """A hash of each labelled row's feature columns (index: the row's label), computed once per audit."""
    if "feature_keys" not in ctx.cache:
        labelled = ctx.labelled_frame()
        keys = row_keys(ctx)[1]
        if len(labelled) < ctx.n:
            keys = keys[ctx.df[ctx.target].notna().to_numpy()]
        ctx.cache["feature_keys"] = pd.Series(keys, index=labelled.index)
    return ctx.cache["feature_keys"]


def check_duplicates(ctx: Context) -> list[Finding]:
    out = []
    full = row_keys(ctx)[0]
    dup = pd.Series(full).duplicated(keep="first").to_numpy()
    n_dup = int(dup.sum())
    if n_dup:
        frac = n_dup / ctx.n
        examples = ctx.df.index[dup][:10].tolist()
        out.append(Finding("duplicate_rows", "warning" if frac >= 0.005 or n_dup >= 100 else "info",
                           f"{n_dup:,} rows ({share(frac)}) are exact copies of an earlier row",
                           "copies over-weight some examples and, split across train and test, inflate test scores.",
                           "drop them if they are export errors (trainyard keeps identical rows in one split either way).",
                           score=frac, data={"rows": n_dup, "share": frac, "examples": examples}))
    features = feature_columns(ctx)
    if ctx.target is None or not features:
        return out
    labelled = ctx.labelled_frame()
    keys = feature_keys(ctx)
    y = labelled[ctx.target]
    frame = pd.DataFrame({"key": keys.to_numpy(), "y": column_hash(y)}, index=labelled.index)
    repeated = frame[frame["key"].duplicated(keep=False).to_numpy()]
    if repeated.empty:
        return out
    labels_per_key = repeated.groupby("key")["y"].nunique()
    conflicting_keys = labels_per_key[labels_per_key > 1].index
    in_conflict = repeated[repeated["key"].isin(conflicting_keys)]
    if len(in_conflict):
        frac = len(in_conflict) / len(labelled)
        groups = [g.index[:5].tolist() for _, g in list(in_conflict.groupby("key"))[:5]]
        out.append(Finding("conflicting_duplicates", "warning",
                           f"{len(in_conflict):,} rows ({share(frac)}) in {len(conflicting_keys):,} groups have identical features but different labels",
                           "the same input with different answers is either label noise or a missing feature; no model can get these all right.",
                           "check the labels of these rows, or find the feature that tells them apart.",
                           column=ctx.target, score=frac, data={"rows": len(in_conflict), "groups": len(conflicting_keys), "example_groups": groups}))
    return out


def normalised(frame: pd.DataFrame) -> pd.DataFrame:
    """Text lower-cased with punctuation and whitespace removed; numbers rounded to 3 significant digits;
    times floored to the day."""
    out = {}
    for name in frame.columns:
        s = frame[name]
        if pd.api.types.is_bool_dtype(s):
            out[name] = s
        elif pd.api.types.is_numeric_dtype(s):
            x = s.to_numpy(dtype=float)
            with np.errstate(divide="ignore", invalid="ignore"):
                mag = np.where((x == 0) | ~np.isfinite(x), 0, np.floor(np.log10(np.abs(np.where(x == 0, 1, x)))))
            scale = 10.0 ** (2 - mag)
            out[name] = np.round(x * scale) / scale
        elif pd.api.types.is_datetime64_any_dtype(s):
            out[name] = s.dt.floor("D")
        else:  # normalise each distinct value once, then look the rows up by code
            codes, uniques = pd.factorize(s.astype("string"))
            # "St. Louis ", "st louis" and "ST-LOUIS" all become "stlouis"
            norm = pd.Series(uniques, dtype=object).astype(str).str.lower().str.replace(r"[\W_]+", "", regex=True)
            # the normalised text itself (not frame-local codes), so two frames' rows can be compared
            out[name] = np.append(norm.to_numpy(dtype=object), None)[codes]  # code -1 (missing) picks the trailing None
    return pd.DataFrame(out, index=frame.index)


def check_near_duplicates(ctx: Context) -> list[Finding]:
    features = feature_columns(ctx)
    if not features:
        return []
    rows = ctx.settings.near_duplicate_rows
    if len(ctx.df) <= rows:
        frame = ctx.df
    else:  # the audit's row sample (random order) when it is big enough: no second draw from the whole table
        frame = ctx.sample.iloc[:rows] if ctx.sampled and len(ctx.sample) >= rows else ctx.df.sample(rows, random_state=ctx.settings.seed)
    key = features + ([ctx.target] if ctx.target is not None else [])
    exact = pd.Series(row_hash(frame)).duplicated(keep="first").to_numpy()
    near = pd.Series(row_hash(normalised(frame[key]))).duplicated(keep="first").to_numpy()
    only_near = near & ~exact
    n_near = int(only_near.sum())
    if not n_near:
        return []
    frac = n_near / len(frame)
    note = f"measured on a random sample of {len(frame):,} of {ctx.n:,} rows (pairs are only found within the sample)" if len(frame) < ctx.n else None
    id_cols = [c for c in ctx.df.columns if ctx.role(c) == "id" and c != ctx.target]
    extra = f" (ignoring the identifier column(s) {', '.join(id_cols)})" if id_cols else ""
    return [Finding("near_duplicates", "warning" if frac >= 0.005 else "info",
                    f"{n_near:,} rows ({share(frac)}) repeat another row once text is lower-cased with punctuation and spaces removed and numbers are rounded to 3 significant digits{extra}",
                    "near-copies (re-entered records, the same item with a new id) inflate test scores when they land in both train and test.",
                    "deduplicate them at the source, or pass --group-col with the entity's key so copies stay in one split.",
                    score=frac, data={"rows": n_near, "share": frac, "examples": frame.index[only_near][:10].tolist()}, sampled=note)]
