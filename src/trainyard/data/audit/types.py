"""Column type checks: numbers stored as text mixed with words, disguised missing values, inconsistent spellings
of one category."""

from __future__ import annotations

import re

import pandas as pd

from trainyard.data.audit.context import Context, fmt_values, share
from trainyard.data.audit.report import Finding
from trainyard.data.schema import as_datetime

# Strings people write instead of leaving a cell empty (load_table already reads the common ones as missing).
DISGUISED_MISSING = {"unknown", "missing", "none", "null", "nan", "na", "n/a", "?", "-", "--", "undefined", "not available", "#n/a", "nil"}


def check_types(ctx: Context) -> list[Finding]:
    out = []
    for name in ctx.columns(include_special=True):
        s = ctx.sample[name]
        role = ctx.role(name)
        if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
            continue
        if pd.api.types.is_datetime64_any_dtype(s):
            continue
        values = s.dropna()
        if values.empty:
            continue
        strings = values.astype(str).str.strip()
        out += _mixed_types(ctx, name, values, strings)
        out += _disguised_missing(ctx, name, strings)
        if role == "datetime":
            parsed = as_datetime(values)
            ok = float(parsed.notna().mean())
            sev = "info" if ok >= 0.99 else "warning"
            bad = strings[parsed.isna().to_numpy()].unique()[:5].tolist()
            out.append(Finding("datetime_as_text", sev,
                               f"dates stored as text ({share(ok)} parse)" + (f"; unparseable values such as {fmt_values(bad)}" if bad else ""),
                               "text dates are meaningless to a model until parsed; unparseable ones become missing.",
                               "nothing: trainyard parses them and expands year, month, day, weekday, hour and a day count; store them as ISO 8601 to be safe.",
                               column=name, score=1 - ok, data={"parse_rate": ok, "unparseable_examples": bad}, sampled=ctx.sample_note()))
        elif role == "text":
            words = float(strings.str.split().str.len().mean())
            out.append(Finding("free_text", "info", f"free text ({words:.0f} words on average)",
                               "text needs its own features; as categories every value would be unique.",
                               "nothing: trainyard uses TF-IDF for linear models and length, word count and a small LSA embedding for trees.",
                               column=name, data={"mean_words": words}, sampled=ctx.sample_note()))
        elif role == "categorical":
            counts = strings.value_counts()
            out += _inconsistent_categories(ctx, name, counts)
            nunique = ctx.n_unique(name) if len(counts) > ctx.settings.high_cardinality else len(counts)
            if nunique > ctx.settings.high_cardinality:
                rare = int((counts < 5).sum())
                out.append(Finding("high_cardinality", "info", f"high-cardinality categorical: {nunique:,} distinct values ({rare:,} seen fewer than 5 times)",
                                   "one-hot encoding it makes a column per value and rare values cannot be learned.",
                                   "nothing: trainyard groups rare values, uses out-of-fold target encoding for linear models and native categoricals for boosting.",
                                   column=name, score=nunique / max(ctx.n, 1), data={"distinct": nunique, "rare_values": rare}))
    return out


def _mixed_types(ctx: Context, name: str, values: pd.Series, strings: pd.Series) -> list[Finding]:
    kinds = values.map(lambda v: type(v).__name__).value_counts() if values.dtype == object else pd.Series(dtype=int)
    probe = strings.sample(min(len(strings), 2000), random_state=0)
    if pd.to_numeric(probe, errors="coerce").notna().mean() < 0.3 and not (len(kinds) > 1):
        return []  # clearly text: no need to parse every value
    numeric = pd.to_numeric(strings, errors="coerce").notna()
    rate = float(numeric.mean())
    python_mix = len(kinds) > 1 and set(kinds.index) - {"str"} and "str" in kinds.index
    if not (0.5 <= rate < 1 or (python_mix and rate < 1)):
        return []
    lowered = strings[~numeric.to_numpy()].str.lower()
    non_numeric = strings[~numeric.to_numpy()][~lowered.isin(DISGUISED_MISSING).to_numpy()]
    if non_numeric.empty:
        return []  # only placeholders such as 'unknown': reported as disguised missing values
    examples = non_numeric.value_counts().index[:5].tolist()
    return [Finding("mixed_types", "warning",
                    f"mixed types: {share(rate)} of values are numbers, the rest text such as {fmt_values(examples)}",
                    "a column that mixes numbers and words is either read as text (losing the numbers) or the words silently become missing.",
                    "clean the column at the source (one type per column); trainyard treats the non-numbers as missing when it reads it as numeric.",
                    column=name, score=1 - rate, data={"numeric_share": rate, "text_examples": examples,
                                                      "python_types": kinds.to_dict() if len(kinds) else {}},
                    sampled=ctx.sample_note())]


def _disguised_missing(ctx: Context, name: str, strings: pd.Series) -> list[Finding]:
    lowered = strings.str.lower()
    hits = lowered[lowered.isin(DISGUISED_MISSING)]
    if hits.empty:
        return []
    rate = len(hits) / max(len(ctx.sample), 1)
    found = sorted(set(strings[hits.index].tolist()))[:5]
    return [Finding("disguised_missing", "warning" if rate >= 0.01 else "info",
                    f"{share(rate)} of values are placeholders for 'missing': {fmt_values(found)}",
                    "a placeholder looks like a real category to a model, so missing values get learned as a value.",
                    "replace them with empty cells, or keep them if 'unknown' really is a category.",
                    column=name, score=rate, data={"share": rate, "values": found}, sampled=ctx.sample_note())]


def _normal_key(value: str) -> str:
    return re.sub(r"[\s_\-.,'/]+", "", value.lower())


def _initials(value: str) -> str:
    words = re.findall(r"[A-Za-z]+", value)
    return "".join(w[0] for w in words).lower() if len(words) >= 2 else ""


def _inconsistent_categories(ctx: Context, name: str, counts: pd.Series) -> list[Finding]:
    if len(counts) < 2 or len(counts) > 1000:
        return []
    raw = counts.index.tolist()
    groups: dict[str, list[str]] = {}
    for v in raw:
        groups.setdefault(_normal_key(v), []).append(v)
    for key in list(groups):  # "New York" joins "NY" when its initials are another value's key
        ini = _initials(groups[key][0]) if key in groups else ""
        if ini and ini != key and ini in groups:
            groups[ini] = groups[ini] + groups.pop(key)
    variants = [vs for vs in groups.values() if len(vs) > 1]
    if not variants:
        return []
    total = int(sum(counts[v].sum() for vs in variants for v in vs))
    shown = "; ".join(" = ".join(repr(v) for v in vs[:4]) for vs in variants[:4])
    return [Finding("inconsistent_categories", "warning", f"the same category is written in different ways: {shown}",
                    "each spelling becomes its own category, splitting the evidence for one value across several.",
                    "normalise the spellings at the source (case, spaces, abbreviations).",
                    column=name, score=total / max(len(ctx.sample), 1), data={"variants": variants[:50], "rows": total},
                    sampled=ctx.sample_note())]
