"""Train / validation / test split. The test part is not looked at until the final evaluation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupShuffleSplit, train_test_split

from trainyard.errors import DataError
from trainyard.tasks import Task


@dataclass
class Splits:
    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame
    strategy: str

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}


def split(
    df: pd.DataFrame,
    target: str,
    task: Task,
    *,
    test_size: float = 0.2,
    val_size: float = 0.2,
    seed: int = 0,
    group_col: str | None = None,
    time_col: str | None = None,
    keep_together: list[str] | None = None,
) -> Splits:
    """Stratified for classification, by group or by time when asked; sizes are fractions of all rows.

    `keep_together` (the feature columns) keeps rows identical on them in one split, so exact copies
    cannot land in both train and test and inflate the test score.
    """
    if len(df) < 20:
        raise DataError(f"Only {len(df)} labelled rows: too few to train, validate and test a model.", "use at least 20 rows (a few hundred for a trustworthy estimate).")
    if time_col:
        ordered = df.sort_values(time_col, kind="stable")
        n_test, n_val = int(round(len(df) * test_size)), int(round(len(df) * val_size))
        n_train = len(df) - n_test - n_val
        return Splits(ordered.iloc[:n_train], ordered.iloc[n_train : n_train + n_val], ordered.iloc[n_train + n_val :], f"by time on '{time_col}' (past -> future)")
    if group_col:
        outer = GroupShuffleSplit(n_splits=1, test_size=test_size, random_state=seed)
        rest_idx, test_idx = next(outer.split(df, groups=df[group_col]))
        rest = df.iloc[rest_idx]
        inner = GroupShuffleSplit(n_splits=1, test_size=val_size / (1 - test_size), random_state=seed)
        train_idx, val_idx = next(inner.split(rest, groups=rest[group_col]))
        return Splits(rest.iloc[train_idx], rest.iloc[val_idx], df.iloc[test_idx], f"grouped by '{group_col}' (no group in two splits)")
    if keep_together:
        keys = pd.util.hash_pandas_object(df[keep_together], index=False).to_numpy()
        repeated = pd.Series(keys).duplicated().to_numpy()
        if repeated.any():
            firsts = np.flatnonzero(~repeated)
            inner = split(df.iloc[firsts].reset_index(drop=True), target, task, test_size=test_size, val_size=val_size, seed=seed)
            side = np.empty(len(firsts), dtype=object)
            for name in ("train", "val", "test"):
                side[getattr(inner, name).index.to_numpy()] = name
            where = pd.Series(side, index=keys[firsts]).reindex(keys).to_numpy()
            return Splits(df.iloc[where == "train"], df.iloc[where == "val"], df.iloc[where == "test"],
                          f"{inner.strategy}; {int(repeated.sum())} repeated row(s) kept in the split of their first copy")
    stratify = None
    strategy = "random"
    if task.is_classification:
        counts = df[target].value_counts()
        if counts.min() >= 3:
            stratify, strategy = df[target], "stratified by the target"
        else:
            strategy = f"random (class {counts.idxmin()!r} has only {counts.min()} rows: too few to stratify)"
    rest, test = train_test_split(df, test_size=test_size, random_state=seed, stratify=stratify)
    stratify_rest = rest[target] if stratify is not None else None
    train, val = train_test_split(rest, test_size=val_size / (1 - test_size), random_state=seed, stratify=stratify_rest)
    return Splits(train, val, test, strategy)


def split_indices(y: np.ndarray, *, seed: int, test_size: float, val_size: float, groups=None, classify: bool = True,
               has_test: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, list[str]]:
    """(train, validation, test or None when `has_test`, notes): row indices, sorted.

    Rows with the same `groups` value stay in one part. For classification the parts are stratified by class
    where the counts allow it, and the rows of a class with fewer than 3 groups go to training."""
    n = len(y)
    if n < 10:
        raise DataError(f"Only {n} examples: too few to train, validate and test.", "use at least a few dozen labelled examples per class.")
    notes: list[str] = []
    codes = np.arange(n) if groups is None else np.unique(np.asarray(groups), return_inverse=True)[1].ravel()
    n_groups = int(codes.max()) + 1
    first = np.full(n_groups, n)
    np.minimum.at(first, codes, np.arange(n))  # each group's first row gives the group's label
    labels = np.asarray(y)[first].astype(str) if classify else None
    pinned = np.zeros(n_groups, dtype=bool)
    if classify:
        names, per_class = np.unique(labels, return_counts=True)
        rare = names[per_class < 3]
        if len(rare):
            pinned = np.isin(labels, rare)
            shown = ", ".join(repr(str(r)) for r in rare[:5]) + (f" and {len(rare) - 5} more" if len(rare) > 5 else "")
            notes.append(f"{len(rare)} class(es) with fewer than 3 distinct examples ({shown}) are only in training: "
                         "the validation and test scores do not cover them.")
    free = np.flatnonzero(~pinned)
    if len(free) < (2 if has_test else 3):
        raise DataError(f"Only {n_groups} distinct examples ({n} rows): too few to train, validate and test.",
                        "use at least a few dozen labelled examples per class.")

    def cut(pool, size):
        strata = labels[pool] if classify else None
        if strata is not None and np.unique(strata, return_counts=True)[1].min() < 2:
            strata = None
        try:
            return train_test_split(pool, test_size=size, random_state=seed, stratify=strata)
        except ValueError:  # too few rows per class for a stratified cut of this size
            return train_test_split(pool, test_size=size, random_state=seed)

    test_groups = None
    if not has_test:
        free, test_groups = cut(free, test_size)
    train_groups, val_groups = cut(free, val_size / (1 - test_size))
    train_groups = np.concatenate([train_groups, np.flatnonzero(pinned)])
    if groups is not None and n_groups < n:
        notes.append(f"{n - n_groups} rows repeat another row's text; each repeated text is kept in one part of the split, "
                     "so no test text was seen in training.")

    def rows(selected):
        return np.flatnonzero(np.isin(codes, selected))

    return rows(train_groups), rows(val_groups), None if test_groups is None else rows(test_groups), notes
