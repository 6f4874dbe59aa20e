"""Batch prediction that streams: read a file in chunks, score each, append to the output.

Memory is bounded by the chunk size, not the file: Parquet is read batch by batch with pyarrow,
CSV/TSV/JSON Lines with pandas' chunked readers, and the output is appended chunk by chunk (one
Parquet writer, or appended CSV/JSONL text). Column types are fixed from the model's schema so
every chunk has the same types (a chunk without a decimal point still reads its numbers as floats).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from trainyard.data.conform import Unseen, as_written, check_rows
from trainyard.data.load import iter_chunks, table_format
from trainyard.errors import ConfigError, DataError
from trainyard.models.model import prediction_frame

def _dtypes(model) -> dict[str, object]:
    """Every known column read as text: check_rows turns numeric ones into numbers (naming a value that is not one)
    and as_written gives them back to the output as written (integers stay integers)."""
    return {c.name: str for c in model.schema.columns}


class _Writer:
    def __init__(self, path: Path):
        self.path, self.fmt = path, table_format(path)
        self._pq = None
        self._schema = None
        self._first = True
        self._tmp = path.with_name(f".{path.name}.partial")

    def write(self, df: pd.DataFrame) -> None:
        if self.fmt == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            if self._pq is None:
                table = pa.Table.from_pandas(df, preserve_index=False)
                # an all-null first chunk would fix a column's type to null: make those strings
                self._schema = pa.schema([pa.field(f.name, pa.string()) if pa.types.is_null(f.type) else f for f in table.schema])
                self._pq = pq.ParquetWriter(self._tmp, self._schema)
            self._pq.write_table(pa.Table.from_pandas(df, schema=self._schema, preserve_index=False))
        elif self.fmt == "jsonl":
            with open(self._tmp, "a" if not self._first else "w") as fh:
                df.to_json(fh, orient="records", lines=True)
        else:
            df.to_csv(self._tmp, mode="w" if self._first else "a", header=self._first, index=False, sep="\t" if self.fmt == "tsv" else ",")
        self._first = False

    def close(self, ok: bool) -> None:
        if self._pq is not None:
            self._pq.close()
        if ok and self._tmp.exists():
            self._tmp.replace(self.path)
        elif self._tmp.exists():
            self._tmp.unlink()


def predict_file(model, source: Path, output: Path, *, chunk_rows: int = 100_000, keep_columns: bool = True,
                 on_progress: Callable[[int, int | None, int | None, int | None], None] | None = None,
                 on_unseen: Callable[[list[Unseen]], None] | None = None) -> int:
    """Score `source` into `output` chunk by chunk; returns the number of rows. The output appears only when complete.

    on_progress(rows_done, total_rows_or_None, bytes_done_or_None, total_bytes_or_None) is called after each chunk;
    on_unseen(findings) with each chunk's values never seen in training (data.conform.check_rows)."""
    try:
        table_format(output)
    except DataError:
        raise ConfigError(f"Cannot write predictions to '{output.name}': unknown extension.", "use .csv, .tsv, .parquet or .jsonl.") from None
    if chunk_rows < 1:
        raise ConfigError("--chunk-rows must be at least 1.", "pass a positive number, e.g. --chunk-rows 100000.")
    chunks, total_rows, tell = iter_chunks(source, chunk_rows, _dtypes(model))
    total_bytes = Path(source).stat().st_size if tell else None
    output.parent.mkdir(parents=True, exist_ok=True)
    writer = _Writer(output)
    done, ok = 0, False
    try:
        for i, chunk in enumerate(chunks):
            if len(chunk) == 0:
                continue
            if i == 0:
                _check_columns(chunk, model)
            scored, found = score_frame(model, chunk)
            if on_unseen and found:
                on_unseen(found)
            kept = chunk if writer.fmt in ("csv", "tsv") else as_written(chunk, model.schema)  # text out as it came in
            writer.write(pd.concat([kept, scored], axis=1) if keep_columns else scored)
            done += len(chunk)
            if on_progress:
                on_progress(done, total_rows, tell() if tell else None, total_bytes)
        if done == 0:
            raise DataError(f"'{Path(source).name}' has no data rows.", "pass a file with rows to score.")
        ok = True
    finally:
        writer.close(ok)
    return done


def score_frame(model, X: pd.DataFrame) -> tuple[pd.DataFrame, list[Unseen]]:
    """(the predictions for X, the values in X never seen in training); text in a numeric column or an infinite
    value is refused (DataError naming the column and row)."""
    checked, found = check_rows(X, model.schema)
    return prediction_frame(model, checked), found


def _check_columns(chunk: pd.DataFrame, model) -> None:
    missing = [c for c in model.features if c not in chunk.columns]
    if len(missing) == len(model.features):
        raise DataError(f"None of the model's feature columns are in the file (it expects {', '.join(model.features[:10])}).",
                        "check the file's header row and delimiter.")
    required = [c for c in missing if model.schema.column(c).missing_rate == 0]
    if required:
        raise DataError(f"The file lacks column(s) the model always had in training: {', '.join(required)}.",
                        "add them (columns that had missing values in training may be left out; they are imputed).")
