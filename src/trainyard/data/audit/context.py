"""What every check needs, computed once: roles, a row sample for heavy work, the labelled target."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from trainyard.data.schema import Schema, as_datetime, as_numeric, infer_schema
from trainyard.tasks import Task

# Heavy checks look at a sample of this many rows and say so in their findings.
SCHEMA_SAMPLE = 50_000
STATS_SAMPLE = 200_000


@dataclass
class Settings:
    missing_threshold: float = 0.5  # a column missing more than this is a warning
    row_missing_threshold: float = 0.5  # a row missing more than this share of its fields
    near_constant: float = 0.99  # top value share
    high_cardinality: int = 50
    min_group_size: int = 30  # sensitive groups smaller than this are too small to evaluate
    leakage_rows: int = 50_000
    model_rows: int = 10_000  # label noise / poisoning model
    near_duplicate_rows: int = STATS_SAMPLE
    label_noise: bool = True
    seed: int = 0
    max_seconds: float | None = None  # a time-bounded audit (a training run's share of its --time-limit) skips checks past it


@dataclass
class Context:
    df: pd.DataFrame
    target: str | None
    task: Task | None
    schema: Schema
    sample: pd.DataFrame  # <= STATS_SAMPLE rows, fixed seed
    sensitive: tuple[str, ...] = ()
    time_col: str | None = None
    group_col: str | None = None
    settings: Settings = field(default_factory=Settings)
    cache: dict = field(default_factory=dict)  # results shared between checks (e.g. out-of-fold probabilities)

    @property
    def n(self) -> int:
        return len(self.df)

    @property
    def sampled(self) -> bool:
        return len(self.sample) < len(self.df)

    def sample_note(self, rows: int | None = None) -> str | None:
        rows = len(self.sample) if rows is None else rows
        return f"measured on a random sample of {rows:,} of {self.n:,} rows" if rows < self.n else None

    def role(self, name: str) -> str:
        try:
            return self.schema.role(name)
        except KeyError:
            return "ignore"

    def columns(self, *roles: str, include_special: bool = False) -> list[str]:
        """Non-target columns with one of `roles` (all roles when none), leaving out the time and group columns."""
        special = set() if include_special else {self.time_col, self.group_col}
        return [c.name for c in self.schema.columns
                if c.name != self.target and c.name not in special and (not roles or c.role in roles)]

    def labelled_frame(self) -> pd.DataFrame:
        """The rows whose target is present (the table itself, not a copy, when none is missing)."""
        if "labelled" not in self.cache:
            present = self.df[self.target].notna()
            self.cache["labelled"] = self.df if present.all() else self.df[present.to_numpy()]
        return self.cache["labelled"]

    def labelled(self, rows: int) -> pd.DataFrame:
        """Up to `rows` rows whose target is present (a fixed random sample when there are more).

        On a big table the rows come from the audit's random row sample (drawing a fresh sample from a million rows
        of text columns costs more than the check that uses it); samples of different sizes are nested.
        """
        key = ("labelled", rows)
        if key not in self.cache:
            labelled = self.labelled_frame()
            if len(labelled) > rows:
                pool = np.flatnonzero(self.sample[self.target].notna().to_numpy()) if self.sampled else []
                labelled = self.sample.iloc[pool[:rows]] if len(pool) >= rows else labelled.sample(rows, random_state=self.settings.seed)
            self.cache[key] = labelled
        return self.cache[key]

    def missing_rates(self) -> pd.Series:
        """Share of missing values per column (every column, the target included), computed once."""
        if "missing_rates" not in self.cache:
            rates = [float(self.df.iloc[:, i].isna().mean()) for i in range(self.df.shape[1])]  # no rows x columns mask
            self.cache["missing_rates"] = pd.Series(rates, index=self.df.columns, dtype=float)
        return self.cache["missing_rates"]

    def n_unique(self, name: str) -> int:
        """Distinct non-missing values in the whole column, counted once."""
        key = ("n_unique", name)
        if key not in self.cache:
            self.cache[key] = int(self.df[name].nunique(dropna=True))
        return self.cache[key]

    def numeric(self, name: str) -> pd.Series:
        """The whole column as floats (text parsed, what does not parse is NaN); parsed once per audit."""
        s = self.df[name]
        if pd.api.types.is_float_dtype(s.dtype) and s.dtype == np.float64:
            return s
        key = ("numeric", name)
        if key not in self.cache:
            self.cache[key] = as_numeric(s)
        return self.cache[key]

    def datetimes(self, name: str) -> pd.Series:
        """The whole column as timestamps (text parsed once per distinct value, unparseable -> NaT); cached."""
        key = ("datetime", name)
        if key not in self.cache:
            self.cache[key] = as_datetime(self.df[name])
        return self.cache[key]

    def spread(self, name: str) -> tuple[bool, float, float] | None:
        """(log scale?, median, robust SD) of a numeric column, from the row sample: the yardstick for outliers."""
        key = ("spread", name)
        if key not in self.cache:
            self.cache[key] = robust_spread(as_numeric(self.sample[name]).dropna())
        return self.cache[key]

    def robust_z(self, name: str, values: pd.Series | None = None) -> pd.Series:
        """Distance of every value (NaN where missing) from the column's median in robust SDs (see `spread`).

        When most rows hold one value (capital_loss is 0 on 95% of Adult's rows) the column has no robust spread;
        then the yardstick is the spread of the other values, and only values beyond them, away from the common
        value, get a distance (a 250,000 among losses of 1,500-2,500); the rest are 0."""
        values = self.numeric(name) if values is None else values
        spread = self.spread(name)
        if spread is not None:
            return robust_z(values, spread)
        key = ("spread_beyond_common", name)
        if key not in self.cache:
            sample = as_numeric(self.sample[name]).dropna()
            common = float(sample.mode().iloc[0]) if len(sample) else 0.0
            rest = sample[sample != common]
            self.cache[key] = (common, float(rest.median()) if len(rest) else 0.0, robust_spread(rest) if len(rest) >= 20 else None)
        common, middle, rest_spread = self.cache[key]
        z = robust_z(values, rest_spread)
        beyond = np.sign(middle - common) * (values.to_numpy(dtype=float) - middle) > 0
        return z.where(beyond | values.isna(), 0.0)


def build_context(df, target, task, sensitive, time_col, group_col, settings, roles=None) -> Context:
    n = len(df)
    if n > STATS_SAMPLE:  # one random sample (in random order): its first rows are a smaller random sample
        sample = df.sample(STATS_SAMPLE, random_state=settings.seed)
        schema_rows = sample.iloc[:SCHEMA_SAMPLE]
    else:
        sample = df
        schema_rows = df if n <= SCHEMA_SAMPLE else df.sample(SCHEMA_SAMPLE, random_state=settings.seed)
    schema = infer_schema(schema_rows, target, roles)
    return Context(df, target, task, schema, sample, tuple(sensitive), time_col, group_col, settings)


def robust_spread(values: pd.Series) -> tuple[bool, float, float] | None:
    """(log scale?, median, robust SD): from the IQR (on a log scale for non-negative, right-skewed columns, so
    long tails are not outliers), falling back to the MAD; None when the values do not vary."""
    if values.empty:
        return None
    log = bool(values.min() >= 0 and values.skew() > 2) and _long_tailed_bulk(values)
    x = np.log1p(values.to_numpy(dtype=float)) if log else values.to_numpy(dtype=float)
    q1, med, q3 = np.percentile(x, [25, 50, 75])
    iqr = q3 - q1
    if iqr <= 0:
        iqr = 1.349 * 1.4826 * float(np.median(np.abs(x - med)))
    if iqr <= 0:
        return None
    return log, float(med), float(iqr / 1.349)


def _long_tailed_bulk(values: pd.Series) -> bool:
    """Whether the bulk of the values has a long right tail, judged by Kelly's quantile skewness
    ((q90 + q10 - 2 q50) / (q90 - q10) > 0.2: 0.4 for a lognormal of sigma 0.6, 0.28-0.71 on breast_cancer's
    '... error' columns, 0 for a symmetric bulk). The moment skew alone is driven by a few extreme values: 30 planted
    charges of 7,000 among 18-120 make it large on their own, and on the log scale it then chose they hid themselves
    (6.8 robust SDs out instead of 175). Up to 10% of extreme values leave the 10% and 90% quantiles in the bulk."""
    q10, q50, q90 = np.percentile(values.to_numpy(dtype=float), [10, 50, 90])
    return bool(q90 <= q10 or (q90 + q10 - 2 * q50) / (q90 - q10) > 0.2)


def robust_z(values: pd.Series, spread: tuple[bool, float, float] | None) -> pd.Series:
    """Distance from the median in robust SDs, given `robust_spread` of the column (0 when it does not vary)."""
    if spread is None:
        return pd.Series(np.where(values.isna(), np.nan, 0.0), index=values.index)
    log, med, sd = spread
    x = values.to_numpy(dtype=float)
    if log:
        with np.errstate(invalid="ignore", divide="ignore"):
            x = np.log1p(np.maximum(x, -1 + 1e-12))  # a negative value in a sampled-as-positive column: far out
    return pd.Series(np.abs(x - med) / sd, index=values.index)


def fmt_values(values, limit: int = 5) -> str:
    shown = [repr(v) for v in list(values)[:limit]]
    more = f" and {len(values) - limit} more" if len(values) > limit else ""
    return ", ".join(shown) + more


def share(x: float) -> str:
    """A rate as a readable percentage (0.0004 -> '0.04%')."""
    if x == 0:
        return "0%"
    if x < 0.001:
        return f"{x:.2%}"
    if x < 0.1:
        return f"{x:.1%}"
    return f"{x:.0%}"


def column_hash(s: pd.Series) -> np.ndarray:
    """A 64-bit hash of each value; text is hashed once per distinct value (three times faster on a big column)."""
    if pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype) or pd.api.types.is_datetime64_any_dtype(s.dtype):
        return pd.util.hash_pandas_object(s, index=False).to_numpy()
    codes, uniques = pd.factorize(s)
    hashed = pd.util.hash_pandas_object(pd.Series(uniques, dtype=object), index=False).to_numpy()
    out = hashed[np.maximum(codes, 0)] if len(hashed) else np.zeros(len(codes), dtype=np.uint64)
    out[codes < 0] = _MISSING_HASH
    return out


_MISSING_HASH = np.uint64(0x9E3779B97F4A7C15)


def combine_hashes(h: np.ndarray | None, column: np.ndarray, position: int) -> np.ndarray:
    """Fold one column's hashes into the running row hashes (in place; order matters, like a tuple's hash)."""
    mult = np.uint64(1_000_003 + 2 * 82_520 * (position + 1))
    if h is None:
        h = np.full(len(column), np.uint64(0x345678), dtype=np.uint64)
    with np.errstate(over="ignore"):
        np.bitwise_xor(h, column, out=h)
        np.multiply(h, mult, out=h)
    return h


def row_hash(frame: pd.DataFrame) -> np.ndarray:
    """A 64-bit hash of each row's values (column order matters; index ignored)."""
    h = None
    for i, name in enumerate(frame.columns):
        h = combine_hashes(h, column_hash(frame.iloc[:, i]), i)
    return h if h is not None else np.zeros(len(frame), dtype=np.uint64)
