"""Labelled texts from a table, for fine-tuning an encoder: the text column, the labels, the task, and an honest split.

`load_texts` streams a CSV / TSV / JSONL / Parquet file into a token store
(data/tokens.py: the texts are never all in memory), finds the text column
(named with --text-col, or the one free-text column), cleans the labels
(missing labels dropped, mixed types made strings, whole-number floats made
integers) and decides between text classification and text regression the way
the table path does (`tasks.infer_task`). `data.split.split_indices` splits train /
validation / test with a seed: stratified by class, identical texts kept in one
part (a duplicate on both sides of the split would inflate the test score), and
a class too rare to appear in every part kept in training, where it can at
least be learned. What it had to decide is returned as notes for the user.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from trainyard.data.load import load_table
from trainyard.data.schema import infer_schema
from trainyard.data.tokens import TokenRows, build_token_store, store_key, text_key
from trainyard.errors import ConfigError, DataError, suggest
from trainyard.tasks import Task, infer_task

TEXT_TASKS = ("text-classification", "text-regression")


@dataclass
class TextTable:
    texts: TokenRows  # the tokenised texts of the labelled rows (memory-mapped)
    y: np.ndarray
    task: str
    text_col: str
    frame: pd.DataFrame  # the text and target columns of the file's first rows (for the registered model's schema)
    keys: np.ndarray  # a hash per row of its text, case and spacing ignored (duplicates share it)
    notes: list[str] = field(default_factory=list)


def load_texts(data, target: str | None, text_col: str | None = None, task: str | None = None, *, tokenizer,
               cache_dir, max_length: int = 128) -> TextTable:
    """Labelled texts from a file, tokenised with `tokenizer` into a token store under `cache_dir`."""
    if target is None:
        raise ConfigError("Text models need --target, the column with the labels (or scores).", "e.g. --target label --text-col text.")
    head = load_table(data, nrows=2000)  # the file's own errors (missing, empty, binary, wrong delimiter) and its columns
    if target not in head.columns:
        raise DataError(f"Target column '{target}' is not in the data.", _no_header_hint(head) or suggest(target, head.columns))
    notes: list[str] = []
    if text_col is None:
        text_col = find_text_column(head, target, notes)
    elif text_col not in head.columns:
        raise DataError(f"No column '{text_col}' in {Path(str(data)).name}.", suggest(text_col, head.columns))
    if text_col == target:
        raise ConfigError(f"'{text_col}' is both the text and the target.", "--text-col names the text, --target the labels to predict.")
    settings = {"text_col": text_col, "target": target, "max_length": max_length}
    store = build_token_store(data, Path(cache_dir) / store_key(Path(data), tokenizer, settings), tokenizer=tokenizer,
                              max_length=max_length, text_col=text_col, target=target)
    labels, keys, rows = store["labels"].rename(target), store["keys"], store["rows"]
    if labels.notna().sum() == 0:
        raise DataError(f"Target column '{target}' is empty (every value is missing).", "pick the column that holds the outcome.")
    missing = int(labels.isna().sum())
    if missing:
        notes.append(f"{missing} rows without a '{target}' value were left out.")
        keep = labels.notna().to_numpy()
        labels, keys, rows = labels[keep].reset_index(drop=True), keys[keep], rows.take(np.flatnonzero(keep))
    if labels.nunique() < 2:
        raise DataError(f"Target '{target}' has a single value ({labels.iloc[0]!r}): there is nothing to learn.",
                        "check the target column, or add rows of the other class.")
    task = task or _infer_text_task(labels, notes)
    y = _clean_labels(labels, task)
    empty = int((keys == pd.util.hash_array(np.array([text_key("")], dtype=object))[0]).sum())
    if empty == len(keys):
        raise DataError(f"Every value of '{text_col}' is empty.", "point --text-col at the column that holds the texts.")
    if empty:
        notes.append(f"{empty} rows have an empty '{text_col}'; they are kept (the model sees an empty text).")
    return TextTable(rows, y, task, text_col, store["sample"], keys, notes)


def _no_header_hint(head: pd.DataFrame) -> str | None:
    """A file whose first row is data (a headerless TSV of id, score, text) has numbers for column names."""
    if any(pd.to_numeric(pd.Series([c]), errors="coerce").notna().iloc[0] for c in head.columns):
        return f"its first row ({', '.join(repr(str(c)[:20]) for c in head.columns[:4])}) looks like data, not a header: add a header row naming the columns."
    return None


def find_text_column(df: pd.DataFrame, target: str, notes: list[str]) -> str:
    """The free-text column when --text-col is not given: the one the schema calls text, else the one string column."""
    texts = infer_schema(df, target, {}).features("text")
    if len(texts) > 1:
        raise ConfigError(f"Several columns hold free text: {', '.join(texts)}.", f"name the one to learn from with --text-col (e.g. --text-col {texts[0]}).")
    if not texts:
        strings = [c for c in df.columns if c != target and (df[c].dtype == object or pd.api.types.is_string_dtype(df[c]))]
        if len(strings) != 1:
            shown = f" (string columns: {', '.join(strings[:10])})" if strings else ""
            raise ConfigError(f"Cannot tell which column holds the text{shown}.", "name it with --text-col COLUMN.")
        texts = strings
    notes.append(f"Using '{texts[0]}' as the text column (--text-col to choose another).")
    return texts[0]


def _infer_text_task(y: pd.Series, notes: list[str]) -> str:
    if infer_task(y) is not Task.REGRESSION:
        return "text-classification"
    notes.append(f"Target '{y.name}' holds {y.nunique()} distinct numbers: training a text regression "
                 "(--task text-classification treats them as classes).")
    return "text-regression"


def _clean_labels(y: pd.Series, task: str) -> np.ndarray:
    if task == "text-regression":
        values = pd.to_numeric(y, errors="coerce")
        bad = values.isna() | ~np.isfinite(values.fillna(0))
        if bad.any():
            example = y[bad].iloc[0]
            raise DataError(f"Text regression needs a number in every row of '{y.name}', but it holds {example!r}.",
                            "fix or remove those rows, or use --task text-classification.")
        return values.to_numpy(dtype=float)
    if pd.api.types.is_float_dtype(y) and np.allclose(y, np.round(y)):
        return y.astype(np.int64).to_numpy()  # 0.0 / 1.0 (a column that had missing values) are the classes 0 / 1
    values = y.to_numpy()
    if values.dtype == object and len({type(v) for v in values}) > 1:
        values = np.array([str(v) for v in values], dtype=object)  # "1", 2, "pos" in one JSONL column: compare as strings
    return values
