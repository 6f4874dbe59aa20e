"""Schema inference: what role each column plays, overridable by the user.

Roles: numeric, categorical, boolean, datetime, text, id, ignore. The schema is
saved inside the model and drives both preprocessing and input validation at
serving time.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from trainyard.errors import ConfigError, DataError, suggest

ROLES = ("numeric", "categorical", "boolean", "datetime", "text", "id", "ignore")
FEATURE_ROLES = ("numeric", "categorical", "boolean", "datetime", "text")
TRUE_WORDS = {"true", "t", "yes", "y"}
FALSE_WORDS = {"false", "f", "no", "n"}
_UUID = re.compile(r"^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$", re.I)
_HEX = re.compile(r"^[0-9a-f]{16,}$", re.I)
_DATEISH = re.compile(r"\d{1,4}[-/.:]\d{1,2}")


@dataclass
class ColumnSchema:
    name: str
    role: str
    dtype: str
    missing_rate: float
    n_unique: int
    reason: str = ""
    min: float | None = None
    max: float | None = None
    categories: list[str] | None = None  # most frequent values seen in training (categorical/boolean)


@dataclass
class Schema:
    target: str | None
    columns: list[ColumnSchema] = field(default_factory=list)

    def role(self, name: str) -> str:
        return self.column(name).role

    def column(self, name: str) -> ColumnSchema:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    def features(self, *roles: str) -> list[str]:
        wanted = roles or FEATURE_ROLES
        return [c.name for c in self.columns if c.role in wanted and c.name != self.target]

    def to_dict(self) -> dict:
        return {"target": self.target, "columns": [asdict(c) for c in self.columns]}

    @classmethod
    def from_dict(cls, d: dict) -> "Schema":
        return cls(target=d.get("target"), columns=[ColumnSchema(**c) for c in d["columns"]])


def infer_schema(
    df: pd.DataFrame,
    target: str | None = None,
    overrides: dict[str, str] | None = None,
    max_categories: int = 200,
) -> Schema:
    """Infer a role for every column; `overrides` maps column -> role and wins."""
    overrides = dict(overrides or {})
    for col, role in overrides.items():
        if role not in ROLES:
            raise ConfigError(f"'{role}' is not a column role.", "use one of " + ", ".join(ROLES) + ".")
        if col not in df.columns:
            raise ConfigError(f"Column '{col}' (given in an override) is not in the data.", suggest(col, df.columns))
    columns = []
    for name in df.columns:
        s = df[name]
        if name in overrides:
            role, reason = overrides[name], "set by the user"
        elif name == target:
            role, reason = "target", "the target"
        else:
            role, reason = _infer_role(s, max_categories)
        columns.append(_describe(name, s, role, reason))
    return Schema(target=target, columns=columns)


def _describe(name: str, s: pd.Series, role: str, reason: str) -> ColumnSchema:
    col = ColumnSchema(
        name=name, role=role, dtype=str(s.dtype), missing_rate=float(s.isna().mean()),
        n_unique=int(s.nunique(dropna=True)), reason=reason,
    )
    if role == "numeric":
        values = as_numeric(s)
        if values.notna().any():
            col.min, col.max = float(values.min()), float(values.max())
    elif role in ("categorical", "boolean"):
        counts = s.dropna().astype(str).value_counts()
        col.categories = counts.index[:1000].tolist()
    return col


def _infer_role(s: pd.Series, max_categories: int) -> tuple[str, str]:
    n = int(s.notna().sum())
    if n == 0:
        return "ignore", "all values are missing"
    n_unique = int(s.nunique(dropna=True))
    if n_unique == 1:
        return "ignore", "constant: a single value"
    if pd.api.types.is_bool_dtype(s):
        return "boolean", "true/false values"
    if pd.api.types.is_datetime64_any_dtype(s):
        return "datetime", "datetime values"
    if pd.api.types.is_numeric_dtype(s):
        if _is_id_like_numbers(s, n, n_unique):
            return "id", "integers unique per row (a counter or key)"
        return "numeric", "numbers"
    values = s.dropna().astype(str).str.strip()
    lowered = set(values.str.lower().unique()[:5])
    if n_unique == 2 and len(lowered) == 2 and lowered <= TRUE_WORDS | FALSE_WORDS and lowered & TRUE_WORDS:
        return "boolean", "two values meaning true/false"
    sample = values.sample(min(len(values), 2000), random_state=0) if len(values) > 2000 else values
    numeric_share = pd.to_numeric(sample, errors="coerce").notna().mean()
    if numeric_share >= 0.95:
        return "numeric", f"numbers stored as text ({numeric_share:.0%} parse)"
    if sample.str.match(_DATEISH).mean() >= 0.9 and _parses_as_dates(sample):
        return "datetime", "date/time strings"
    unique_share = n_unique / n
    if unique_share >= 0.98 and n >= 20:
        mean_words = sample.str.split().str.len().mean()
        if sample.str.match(_UUID).mean() > 0.9 or sample.str.match(_HEX).mean() > 0.9 or mean_words <= 2:
            return "id", "a distinct value on every row (identifier)"
    mean_words = sample.str.split().str.len().mean()
    if mean_words >= 4 and unique_share > 0.3:
        return "text", f"free text ({mean_words:.0f} words on average)"
    if n_unique > max_categories and unique_share > 0.5:
        return "id", f"{n_unique} distinct values, mostly one per row"
    return "categorical", f"{n_unique} distinct values"


def _is_id_like_numbers(s: pd.Series, n: int, n_unique: int) -> bool:
    if n < 50 or not pd.api.types.is_integer_dtype(s.dropna().convert_dtypes()):
        return False
    if n_unique != n:
        return False
    values = s.dropna().to_numpy()
    diffs = np.diff(values)
    return bool((diffs > 0).all() or (diffs < 0).all() or (np.abs(diffs).mean() > 0 and n_unique == n and n >= 1000))


def _parses_as_dates(values: pd.Series) -> bool:
    return bool(as_datetime(values).notna().mean() >= 0.9)


def as_numeric(s: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(s):
        return s.astype(float)
    if pd.api.types.is_numeric_dtype(s):
        return s.astype(float)
    codes, uniques = pd.factorize(s)
    if len(uniques) > len(s) // 2:  # mostly distinct values: parse them directly
        return pd.to_numeric(s.astype("string").str.strip(), errors="coerce").astype(float)
    # each distinct value parsed once (a million rows of a few thousand values cost what those values cost)
    parsed = pd.to_numeric(pd.Series(uniques, dtype=object).astype("string").str.strip(), errors="coerce").astype(float).to_numpy()
    values = np.append(parsed, np.nan)[codes]  # code -1 (missing) picks the trailing NaN
    return pd.Series(values, index=s.index, name=s.name)


def as_datetime(s: pd.Series) -> pd.Series:
    """Timestamps (naive, UTC) from datetimes or text; what does not parse becomes NaT.

    Text is parsed once per distinct value, first with one inferred format (vectorised), then the leftovers
    value by value ("mixed" formats, mixed time zones): a million rows of dates cost what their few thousand
    distinct values cost.
    """
    if pd.api.types.is_datetime64_any_dtype(s):
        out = s
    elif pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
        out = _to_datetime(s)
    else:
        codes, uniques = pd.factorize(s)
        distinct = pd.Series(uniques, dtype=object).astype(str).str.strip()
        parsed = _to_datetime(distinct)
        rest = parsed.isna().to_numpy()
        if rest.any():
            parsed[rest] = _to_datetime(distinct[rest], format="mixed").to_numpy()
        table = np.append(parsed.to_numpy(dtype="datetime64[ns]"), np.datetime64("NaT", "ns"))
        return pd.Series(table[codes], index=s.index, name=s.name)  # code -1 (missing) picks the trailing NaT
    if getattr(out.dt, "tz", None) is not None:
        out = out.dt.tz_convert("UTC").dt.tz_localize(None)
    return out


def _to_datetime(values: pd.Series, **kwargs) -> pd.Series:
    """pd.to_datetime with errors coerced and any time zones converted to naive UTC."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            out = pd.to_datetime(values, errors="coerce", **kwargs)
        except (ValueError, TypeError, OverflowError):  # mixed time zones, or aware and naive values together
            out = pd.to_datetime(values, errors="coerce", utc=True, **kwargs)
        if not pd.api.types.is_datetime64_any_dtype(out):  # objects with several offsets
            out = pd.to_datetime(out, errors="coerce", utc=True)
    if getattr(out.dt, "tz", None) is not None:
        out = out.dt.tz_convert("UTC").dt.tz_localize(None)
    if out.dtype != "datetime64[ns]":  # pandas may parse "10-24" as year 1 at coarser units: outside ns range is not a date
        out = out.mask((out < NS_FIRST) | (out > NS_LAST))
    return out.astype("datetime64[ns]")


NS_FIRST, NS_LAST = pd.Timestamp("1677-09-22"), pd.Timestamp("2262-04-11")


def check_target(df: pd.DataFrame, target: str | None) -> None:
    """Clear errors for a missing, absent or degenerate target column."""
    if not target:
        raise ConfigError("No target column given.", "name the column to predict with --target COLUMN.")
    if target not in df.columns:
        raise DataError(f"Target column '{target}' is not in the data.", suggest(target, df.columns))
    y = df[target]
    if y.notna().sum() == 0:
        raise DataError(f"Target column '{target}' is empty (every value is missing).", "pick the column that holds the outcome.")
    if y.nunique(dropna=True) < 2:
        raise DataError(
            f"Target column '{target}' has a single value ({y.dropna().iloc[0]!r}): there is nothing to learn.",
            "check the target column, or add rows of the other class.",
        )
    if df.shape[1] < 2:
        raise DataError("The table has only the target column: there are no features.", "add feature columns.")
