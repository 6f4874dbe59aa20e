"""Rows to score, held against the schema of the data the model learned from.

`check_rows` refuses what a model cannot score honestly (text in a column that held numbers, infinite values)
with the column and the row named, and counts what it can score but never saw (a category absent from training,
a number outside the training range): the same rules the server's validation applies, as findings to report
instead of a refusal. `as_written` gives the input columns back as the file wrote them (an integer stays an
integer) for the output, whatever types the scoring needed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from trainyard.data.schema import Schema, as_numeric
from trainyard.errors import DataError

_INTEGER = re.compile(r"^\s*[+-]?\d+\s*$")


@dataclass(frozen=True)
class Unseen:
    """Rows holding a value the model never saw in training, in one column."""

    column: str
    what: str  # "category never seen in training" or "value outside the training range"
    rows: int
    example: str
    seen: str  # what training held: the range or some categories


def check_rows(X: pd.DataFrame, schema: Schema) -> tuple[pd.DataFrame, list[Unseen]]:
    """(X with its numeric columns as numbers, ready for the model; the unseen values found).

    Raises DataError naming the column and row (1-based, counted over the data rows) for text in a numeric
    column or an infinite value. X's index numbers the rows (a chunk of a file keeps counting from the chunk before)."""
    numbers: dict[str, pd.Series] = {}
    found: list[Unseen] = []
    for col in schema.columns:
        if col.name not in X.columns or col.role not in ("numeric", "categorical", "boolean"):
            continue
        s = X[col.name]
        if col.role == "numeric":
            values = _numbers(s, col.name)
            if not pd.api.types.is_float_dtype(s):
                numbers[col.name] = values
            if col.min is not None and col.max is not None:
                outside = (values < col.min) | (values > col.max)
                if outside.any():
                    found.append(Unseen(col.name, "value outside the training range", int(outside.sum()), _show(values[outside].iloc[0]),
                                        f"{_show(col.min)} to {_show(col.max)}"))
        elif col.categories and len(col.categories) >= col.n_unique:
            present = s.dropna()
            new = ~present.astype(str).str.strip().isin(set(col.categories))
            if new.any():
                found.append(Unseen(col.name, "category never seen in training", int(new.sum()), repr(str(present[new].iloc[0])),
                                    ", ".join(repr(c) for c in col.categories[:5]) + (" ..." if len(col.categories) > 5 else "")))
    if numbers:
        X = X.assign(**numbers)
    return X, found


def _numbers(s: pd.Series, name: str) -> pd.Series:
    values = as_numeric(s)
    text = s.notna() & values.isna()
    if text.any():
        row = _row(s, text)
        raise DataError(
            f"Column '{name}' held numbers in training but row {row} holds {str(s[text].iloc[0])[:60]!r}"
            f" ({int(text.sum())} such row(s)).",
            "correct the value, or leave the cell empty (missing values are imputed as in training).",
        )
    infinite = np.isinf(values.to_numpy(dtype=float))
    if infinite.any():
        mask = pd.Series(infinite, index=s.index)
        raise DataError(
            f"Column '{name}' holds an infinite value on row {_row(s, mask)} ({int(infinite.sum())} such row(s)).",
            "replace it with a finite number, or leave the cell empty (missing values are imputed as in training).",
        )
    return values


def _row(s: pd.Series, mask: pd.Series) -> int:
    at = s.index[mask.to_numpy()][0]
    return int(at) + 1 if isinstance(at, (int, np.integer)) else int(np.flatnonzero(mask.to_numpy())[0]) + 1


def _show(value: float) -> str:
    return f"{value:g}"


def as_written(X: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """X with numeric columns that were read as text turned back into numbers: a column of integers in training whose
    values are all whole numbers stays integers (27 stays 27, an empty cell stays empty), the rest are floats (so every
    chunk of a file gets the same types). Columns already typed are untouched."""
    typed = {}
    for col in schema.columns:
        if col.role != "numeric" or col.name not in X.columns:
            continue
        s = X[col.name]
        if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
            continue
        values = as_numeric(s)
        present = s.dropna().astype(str)
        whole = col.dtype.lower().startswith(("int", "uint")) and bool(present.map(lambda v: bool(_INTEGER.match(v))).all())
        typed[col.name] = values.astype("Int64") if whole else values
    return X.assign(**typed) if typed else X


def describe(found: list[Unseen]) -> list[str]:
    """One line per column, for a warning."""
    return [f"{u.column}: {u.rows:,} row(s) with a {u.what} (e.g. {u.example}; training had {u.seen})"
            for u in found]


def merge(totals: dict[tuple[str, str], Unseen], found: list[Unseen]) -> None:
    """Add a chunk's findings into running totals keyed by (column, what)."""
    for u in found:
        before = totals.get((u.column, u.what))
        totals[(u.column, u.what)] = u if before is None else Unseen(u.column, u.what, before.rows + u.rows, before.example, before.seen)
