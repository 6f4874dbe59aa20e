"""What every check needs, computed once: roles, a row sample for heavy work, the labelled target."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from trainyard.data.schema import Schema, infer_schema
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
        """Up to `rows` rows whose target is present (a fixed random sample when there are more)."""
        labelled = self.labelled_frame()
        if len(labelled) > rows:
            labelled = labelled.sample(rows, random_state=self.settings.seed)
        return labelled


def build_context(df, target, task, sensitive, time_col, group_col, settings, roles=None) -> Context:
    n = len(df)
    schema_rows = df if n <= SCHEMA_SAMPLE else df.sample(SCHEMA_SAMPLE, random_state=settings.seed)
    schema = infer_schema(schema_rows, target, roles)
    sample = df if n <= STATS_SAMPLE else df.sample(STATS_SAMPLE, random_state=settings.seed)
    return Context(df, target, task, schema, sample, tuple(sensitive), time_col, group_col, settings)


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


def row_hash(frame: pd.DataFrame) -> np.ndarray:
    """A 64-bit hash of each row's values (column order matters; index ignored)."""
    return pd.util.hash_pandas_object(frame, index=False).to_numpy()
