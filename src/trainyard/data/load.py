"""Read a table from a path or take a DataFrame, with errors a user can act on."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from trainyard.data.textfile import check_encoding, check_not_shifted, json_lines_error, ragged_error
from trainyard.errors import DataError, NotFoundError

READERS = {
    ".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".txt": "csv",
    ".parquet": "parquet", ".pq": "parquet",
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json",
}
COMPRESSIONS = {".gz", ".bz2", ".zip", ".xz", ".zst"}
# Values that mean "missing" in real exports (UCI's '?', spreadsheets' '#N/A', ...).
NA_VALUES = ["", "?", "NA", "N/A", "n/a", "NaN", "nan", "null", "NULL", "None", "#N/A", "-"]


def table_format(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in COMPRESSIONS:
        suffixes = suffixes[:-1]
    fmt = READERS.get(suffixes[-1]) if suffixes else None
    if fmt is None:
        raise DataError(
            f"Cannot tell the format of '{path.name}' from its extension.",
            "use one of " + ", ".join(sorted(READERS)) + " (optionally compressed with .gz, .zip, ...).",
        )
    return fmt


def source_name(data) -> str:
    """How a run records where its data came from: the absolute path of a file or folder (so a resume from another
    directory finds it), or "<DataFrame>" for data passed in memory."""
    if isinstance(data, pd.DataFrame):
        return "<DataFrame>"
    try:
        path = Path(os.fspath(data)).expanduser()
    except TypeError:
        return str(data)
    return str(path.resolve()) if path.exists() else str(data)


def load_table(source, *, nrows: int | None = None) -> pd.DataFrame:
    """A DataFrame from a DataFrame, or from a CSV, TSV, Parquet or JSON Lines file."""
    if isinstance(source, pd.DataFrame):
        df = source
    else:
        path = Path(os.fspath(source)).expanduser()
        if not path.exists():
            raise NotFoundError(f"File not found: {path}", "check the path (it is relative to the current directory).")
        if path.is_dir():
            raise DataError(f"'{path}' is a directory, not a table.", "pass a .csv, .tsv, .parquet or .jsonl file.")
        if path.stat().st_size == 0:
            raise DataError(f"'{path}' is empty (0 bytes).", "pass a file with a header row and at least a few data rows.")
        fmt = table_format(path)
        if fmt != "parquet":
            check_encoding(path)
        df = _read(path, fmt, nrows)
        if df.shape[1] == 1 and fmt in ("csv", "tsv"):
            _check_single_column(path, str(df.columns[0]), "\t" if fmt == "tsv" else _sniff_separator(path))
    if df.shape[1] == 0:
        raise DataError("The table has no columns.", "check the file's delimiter and header row.")
    if len(df) == 0:
        raise DataError("The table has a header but no rows.", "pass a file with data rows.")
    names = [str(c).strip() for c in df.columns]
    if names != list(df.columns):
        df = df.copy(deep=False)  # the caller's DataFrame keeps its column names (no data is copied)
        df.columns = names
    df = _nested_as_text(df)
    dupes = sorted(set(df.columns[df.columns.duplicated()]))
    if dupes:
        raise DataError(f"Column names appear more than once: {', '.join(dupes)}.", "rename them so every column has its own name.")
    return df


def _nested_as_text(df: pd.DataFrame) -> pd.DataFrame:
    """Cells holding JSON objects or arrays (nested JSON Lines) as JSON text: every step after loading counts,
    hashes and compares values, which lists and dicts do not allow."""
    nested = [c for c in df.columns if df[c].dtype == object and pd.api.types.infer_dtype(df[c], skipna=True).startswith("mixed")
              and df[c].map(lambda v: isinstance(v, NESTED)).any()]
    if not nested:
        return df
    import json

    df = df.copy(deep=False)  # the replaced columns are new arrays: the caller's frame is untouched
    for c in nested:
        df[c] = df[c].map(lambda v: json.dumps(_plain(v), sort_keys=True, default=str) if isinstance(v, NESTED) else v)
    return df


# Parquet list columns arrive as numpy arrays (of arrays, for nested lists), JSON ones as lists and dicts.
NESTED = (dict, list, set, tuple, np.ndarray)


def _plain(value):
    """Lists and dicts all the way down (numpy arrays, as Parquet gives nested lists, become lists)."""
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, (list, tuple, set)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _read(path: Path, fmt: str, nrows: int | None) -> pd.DataFrame:
    try:
        if fmt in ("csv", "tsv"):
            sep = "\t" if fmt == "tsv" else _sniff_separator(path)
            return _read_csv(path, sep, nrows)
        if fmt == "parquet":
            df = pd.read_parquet(path)
            return df.head(nrows) if nrows else df
        if fmt == "jsonl":
            return pd.read_json(path, lines=True, nrows=nrows)
        try:
            return pd.read_json(path)
        except ValueError:
            return pd.read_json(path, lines=True, nrows=nrows)
    except DataError:
        raise
    except UnicodeDecodeError as exc:
        raise _unreadable(path, fmt, exc) from exc
    except (pd.errors.ParserError, ValueError) as exc:
        found = ragged_error(path, "\t" if fmt == "tsv" else _sniff_separator(path)) if fmt in ("csv", "tsv") else None
        found = found or (json_lines_error(path) if fmt in ("jsonl", "json") else None)
        if found is not None:
            raise found from exc
        raise _unreadable(path, fmt, exc) from exc
    except (OSError, ImportError) as exc:
        raise _unreadable(path, fmt, exc) from exc


def _unreadable(path: Path, fmt: str, exc: Exception) -> DataError:
    detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
    return DataError(
        f"Cannot read '{path.name}' as {fmt.upper()}: {detail}",
        f"check that the file really is {fmt.upper()} (not a spreadsheet or a binary file) and is not truncated.",
    )


def _read_csv(path: Path, sep: str, nrows: int | None) -> pd.DataFrame:
    check_not_shifted(path, sep)
    kwargs = dict(sep=sep, nrows=nrows, na_values=NA_VALUES, keep_default_na=True, skipinitialspace=True, low_memory=False)
    try:
        df = pd.read_csv(path, encoding="utf-8", **kwargs)
    except UnicodeDecodeError:
        if _looks_binary(path):
            raise DataError(f"'{path.name}' is a binary file, not text.", "export the data as CSV, Parquet or JSON Lines.")
        df = pd.read_csv(path, encoding="latin-1", **kwargs)
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"'{path.name}' has no header row or columns.", "add a header row naming each column.") from exc
    # pandas renames repeated header names to a, a.1, ...: look at the raw header to catch them.
    raw = pd.read_csv(path, sep=sep, header=None, nrows=1, encoding="latin-1").iloc[0].astype(str).str.strip().tolist()
    if len(set(raw)) < len(raw):
        dupes = sorted({c for c in raw if raw.count(c) > 1})
        raise DataError(f"Column names appear more than once: {', '.join(dupes)}.", "rename them so every column has its own name.")
    return df


SEPARATOR_NAMES = {",": "commas", ";": "semicolons", "\t": "tabs", "|": "pipes"}


def _check_single_column(path: Path, header: str, used: str) -> None:
    """A file read as one column whose name holds another separator was read with the wrong delimiter."""
    for sep, name in SEPARATOR_NAMES.items():
        if sep != used and header.count(sep) >= 1:
            raise DataError(
                f"'{path.name}' reads as a single column named {header[:60]!r}: its fields look separated by {name}, "
                f"not {SEPARATOR_NAMES[used]}.",
                "give the file the extension that matches its delimiter (.csv for commas, semicolons or pipes; .tsv for tabs) "
                "or re-export it with one delimiter.",
            )


def _looks_binary(path: Path) -> bool:
    with open(path, "rb") as fh:
        chunk = fh.read(4096)
    return b"\x00" in chunk


def _sniff_separator(path: Path) -> str:
    """',' unless the header clearly uses ';', '\\t' or '|' (European and database exports)."""
    if path.suffix.lower() in COMPRESSIONS:
        return ","
    with open(path, "rb") as fh:
        head = fh.readline(65536)
    if b"\x00" in head:
        raise DataError(f"'{path.name}' is a binary file, not text.", "export the data as CSV, Parquet or JSON Lines.")
    counts = {sep: head.count(sep.encode()) for sep in (",", ";", "\t", "|")}
    best = max(counts, key=counts.get)
    return best if counts[best] > counts[","] else ","


def fingerprint(df: pd.DataFrame) -> str:
    """A SHA-256 of the table's content and column names (order-sensitive), for lineage."""
    h = hashlib.sha256()
    h.update("\x1f".join(map(str, df.columns)).encode())
    h.update(pd.util.hash_pandas_object(df, index=False).values.tobytes())
    return h.hexdigest()


def iter_chunks(path: Path, chunk_rows: int, dtypes: dict | None = None) -> tuple[Iterator[pd.DataFrame], int | None, Callable[[], int] | None]:
    """(chunks, total rows if known, bytes-read-so-far function if the size is the progress measure).
    CSV columns get the types in `dtypes` (a model's schema, so every chunk reads alike), else pandas' inference."""
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"File not found: {path}", "check the path (it is relative to the current directory).")
    fmt = table_format(path)
    if fmt != "parquet":
        check_encoding(path)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        pf = pq.ParquetFile(path)
        return (b.to_pandas() for b in pf.iter_batches(batch_size=chunk_rows)), pf.metadata.num_rows, None
    if fmt in ("csv", "tsv"):
        fh = open(path, "rb")
        compression = "infer" if path.suffix.lower() in (".gz", ".bz2", ".zip", ".xz", ".zst") else None
        reader = pd.read_csv(fh, sep="\t" if fmt == "tsv" else None if compression else _sep(path), chunksize=chunk_rows,
                             dtype=dtypes, na_values=NA_VALUES, keep_default_na=True, skipinitialspace=True,
                             compression=compression or None, engine="c" if not compression else None)
        return _closing(reader, fh, path, "\t" if fmt == "tsv" else ("," if compression else _sep(path))), None, fh.tell
    if fmt == "jsonl":
        fh = open(path, "rb")
        return _closing(pd.read_json(fh, lines=True, chunksize=chunk_rows, dtype=False), fh, path, None), None, fh.tell
    raise DataError(f"'{path.name}' cannot be streamed (a single JSON document).", "use JSON Lines (.jsonl), CSV or Parquet for batch prediction.")


def _sep(path: Path) -> str:
    with open(path, "rb") as fh:
        head = fh.readline(65536)
    counts = {sep: head.count(sep.encode()) for sep in (",", ";", "\t", "|")}
    best = max(counts, key=counts.get)
    return best if counts[best] > counts[","] else ","


def _closing(reader, fh, path: Path, sep: str | None) -> Iterator[pd.DataFrame]:
    """The chunks, each checked for shifted columns (CSV); a parse error names its line."""
    try:
        with reader:
            if sep is not None:
                check_not_shifted(path, sep)
            for chunk in _named_errors(reader, path, sep):
                chunk.columns = [str(c).strip() for c in chunk.columns]
                yield chunk
    finally:
        fh.close()


def _named_errors(reader, path: Path, sep: str | None) -> Iterator[pd.DataFrame]:
    try:
        yield from reader
    except UnicodeDecodeError as exc:
        raise _unreadable(path, "csv" if sep is not None else "jsonl", exc) from exc
    except (pd.errors.ParserError, ValueError) as exc:
        found = ragged_error(path, sep) if sep is not None else json_lines_error(path)
        raise (found or _unreadable(path, "csv" if sep is not None else "jsonl", exc)) from exc
