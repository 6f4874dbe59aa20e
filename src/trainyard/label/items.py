"""Reading what a project labels into items: table rows, text rows (`text_col`) and image folders.

An item has a key (the id column's value, else the row number; an image's path inside the folder), a version
(the SHA-256 of its content: the row's values without the label, the text, or the image file's bytes), its data
and the label it came with (the target column's value, or an image's class folder).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from trainyard.data.images import IMAGE_EXTENSIONS
from trainyard.data.load import load_table
from trainyard.errors import ConfigError, DataError, NotFoundError, suggest
from trainyard.registry.artifact import sha256_file

ID_COLUMNS = ("id", "row_id")
MAX_ITEMS = 200_000


@dataclass
class Item:
    key: str
    content_sha256: str
    data: dict | str
    given: str | None


def plain(value):
    """A JSON-safe cell: NaN and NaT become None, numpy scalars Python ones, timestamps text."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
        return None if isinstance(value, float) and math.isnan(value) else value
    if isinstance(value, (pd.Timestamp,)):
        return None if pd.isna(value) else value.isoformat()
    return value if isinstance(value, (str, int, float, bool)) else str(value)


def text_sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def row_sha(row: dict) -> str:
    return text_sha(json.dumps(row, sort_keys=True, default=str, ensure_ascii=False))


def id_column(df: pd.DataFrame, id_col: str | None) -> str | None:
    """The column that names rows: --id-col, else a column named id or row_id."""
    if id_col is not None:
        if id_col not in df.columns:
            raise ConfigError(f"--id-col {id_col!r} is not a column of the data.", f"{suggest(id_col, df.columns)}")
        return id_col
    return next((c for c in ID_COLUMNS if c in df.columns), None)


def table_items(df: pd.DataFrame, target: str | None, text_col: str | None, id_col: str | None) -> list[Item]:
    """One item per row; `target`'s values are the given labels, the id column's values the keys."""
    for flag, col in (("--target", target), ("--text-col", text_col)):
        if col is not None and col not in df.columns:
            raise ConfigError(f"{flag} {col!r} is not a column of the data.", f"{suggest(col, df.columns)}")
    if len(df) > MAX_ITEMS:
        raise DataError(f"The data has {len(df):,} rows; a labelling project holds at most {MAX_ITEMS:,}.",
                        "label a sample: write the rows to label to a smaller file first.")
    ids = df[id_col].map(plain) if id_col else None
    if ids is not None and (ids.isna().any() or ids.astype(str).duplicated().any()):
        raise DataError(f"The id column {id_col!r} has missing or repeated values, so it cannot name items.",
                        "give --id-col a column whose values are unique and present, or leave it out (rows are then named by number).")
    features = [c for c in df.columns if c not in (target, id_col)]
    items = []
    for pos, row in enumerate(df.to_dict(orient="records")):
        data = {c: plain(row[c]) for c in features}
        if text_col is not None:
            text = "" if data.get(text_col) is None else str(data[text_col])
            sha = text_sha(text)
        else:
            sha = row_sha(data)
        given = plain(row[target]) if target is not None else None
        items.append(Item(str(ids.iloc[pos]) if ids is not None else str(pos), sha, data, None if given is None else str(given)))
    return items


def image_items(root: Path) -> list[Item]:
    """Every image under `root` (its class folder, if any, is its given label); a link leading outside is refused."""
    root = root.resolve()
    items = []
    for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()):
        real = path.resolve()
        if not real.is_relative_to(root):
            raise DataError(f"{path} leads outside the image folder {root} (a link to {real}).",
                            "copy the image into the folder instead of linking to it, or remove the link.")
        rel = path.relative_to(root).as_posix()
        given = rel.split("/")[0] if "/" in rel else None
        items.append(Item(rel, sha256_file(path), rel, given))
    if not items:
        raise DataError(f"No images found under {root}.", f"put images ({', '.join(sorted(IMAGE_EXTENSIONS))}) in the folder, "
                                                          "optionally in one sub-folder per class.")
    if len(items) > MAX_ITEMS:
        raise DataError(f"{root} holds {len(items):,} images; a labelling project holds at most {MAX_ITEMS:,}.", "label a sample in a smaller folder.")
    return items


def read_items(data: Path, target: str | None, text_col: str | None, id_col: str | None) -> tuple[str, list[Item]]:
    """(kind, items) of a data file or image folder."""
    if not data.exists():
        raise NotFoundError(f"No such file or folder: {data}.", "give a table (.csv, .parquet, .jsonl) or a folder of images.")
    if data.is_dir():
        for flag, value in (("--target", target), ("--text-col", text_col), ("--id-col", id_col)):
            if value is not None:
                raise ConfigError(f"{flag} does not apply to an image folder.", "leave it out: an image's class folder is its given label.")
        return "image", image_items(data)
    df = load_table(data)
    if df.empty:
        raise DataError(f"{data} has no rows.", "give a file with at least one row to label.")
    return ("text" if text_col else "table"), table_items(df, target, text_col, id_column(df, id_col))


def image_path(source: str, rel: str) -> Path:
    """The file of an image item, checked to lie inside the project's folder."""
    root = Path(source).resolve()
    path = (root / rel).resolve()
    if not path.is_relative_to(root):
        raise DataError(f"The image {rel!r} lies outside the project's folder {root}.", "recreate the project from a folder holding its images.")
    if not path.is_file():
        raise NotFoundError(f"The image {rel!r} has vanished from {root}.", "put it back, or recreate the project from the folder as it is now.")
    return path
