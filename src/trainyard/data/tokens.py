"""Tokenised texts as flat arrays: every text's token ids back to back, found by (start, length).

`TokenRows` is what the text models train and predict on: one flat array of
ids (uint16 for vocabularies up to 65,536 tokens, as the language model's
shards use), and per row a start and a length. A subset of rows (the train,
validation or test part) is a view that shares the ids; a batch is gathered
and padded to its longest row with a few vectorised NumPy calls.

`build_token_store` streams a CSV / TSV / JSON Lines / Parquet file in chunks
(data/load.py's chunked readers), tokenises each chunk and appends its ids
to `ids.bin`, which is then memory-mapped: training never holds the texts,
only the ids it is batching. The store is written to a temporary name and
renamed when complete, and is reused when the file, the tokenizer and the
settings are unchanged (a resumed run, or a second run on the same file).
Nothing in it is pickled: ids are raw integers, lengths and keys `.npy` (read with
`allow_pickle=False`), labels and the sample Parquet, the settings JSON, so a
store planted in the cache can give wrong data but cannot run code.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from trainyard.data.load import iter_chunks, load_table
from trainyard.errors import DataError

STORE_VERSION = 2  # 2: labels and sample as Parquet (1 pickled them; those stores are never read again)


class TokenRows:
    def __init__(self, ids: np.ndarray, starts: np.ndarray, lengths: np.ndarray):
        self.ids, self.starts, self.lengths = ids, np.asarray(starts, dtype=np.int64), np.asarray(lengths, dtype=np.int64)

    @classmethod
    def from_lists(cls, lists, dtype=np.int32) -> "TokenRows":
        lengths = np.fromiter((len(x) for x in lists), dtype=np.int64, count=len(lists))
        ids = np.fromiter((t for x in lists for t in x), dtype=dtype, count=int(lengths.sum()))
        return cls(ids, starts_of(lengths), lengths)

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, i: int) -> np.ndarray:
        return np.asarray(self.ids[self.starts[i]:self.starts[i] + self.lengths[i]])

    def take(self, rows) -> "TokenRows":
        rows = np.asarray(rows, dtype=np.int64)
        return TokenRows(self.ids, self.starts[rows], self.lengths[rows])

    def pad(self, rows, pad_id: int) -> tuple[np.ndarray, np.ndarray]:
        """(input ids, attention mask), int64 arrays of shape (len(rows), longest of these rows)."""
        rows = np.asarray(rows, dtype=np.int64)
        lengths = self.lengths[rows]
        width = int(lengths.max()) if len(rows) else 0
        mask = np.arange(width) < lengths[:, None]
        out = np.full((len(rows), width), pad_id, dtype=np.int64)
        out[mask] = self.ids[(self.starts[rows][:, None] + np.arange(width))[mask]]  # a memory map reads only these
        return out, mask


def token_dtype(vocab_size: int):
    """uint16 ids for vocabularies up to 65,536 tokens, else uint32."""
    return np.uint16 if vocab_size <= 1 << 16 else np.uint32


def starts_of(lengths: np.ndarray) -> np.ndarray:
    """Where each row begins in the flat ids, from the rows' lengths."""
    return np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64) if len(lengths) else np.zeros(0, np.int64)


def as_token_rows(ids) -> TokenRows:
    return ids if isinstance(ids, TokenRows) else TokenRows.from_lists(ids)


def tokenize_texts(tokenizer, texts, max_length: int, batch: int = 1024) -> TokenRows:
    """Texts as TokenRows, tokenised `batch` texts at a time: the fast tokenizer's per-token objects (offsets,
    masks, type ids) are several times the size of the ids, so only one batch of them exists at once."""
    texts, dtype = [as_text(t) for t in texts], token_dtype(len(tokenizer))
    parts = [TokenRows.from_lists(tokenizer(texts[i:i + batch], truncation=True, max_length=max_length, padding=False)["input_ids"], dtype)
             for i in range(0, len(texts), batch)]
    if len(parts) <= 1:
        return parts[0] if parts else TokenRows.from_lists([], dtype)
    lengths = np.concatenate([p.lengths for p in parts])
    return TokenRows(np.concatenate([p.ids for p in parts]), starts_of(lengths), lengths)


def store_key(path: Path, tokenizer, settings: dict) -> str:
    """A hash of the file (path, size, modification time), the tokenizer's vocabulary and the settings."""
    st = Path(path).stat()
    h = hashlib.sha256(f"{Path(path).resolve()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    h.update(json.dumps(sorted(tokenizer.get_vocab().items())).encode())
    h.update(json.dumps({**settings, "version": STORE_VERSION}, sort_keys=True, default=str).encode())
    return h.hexdigest()[:32]


def build_token_store(path, out_dir, *, tokenizer, max_length: int, text_col: str, target: str, chunk_rows: int = 20_000) -> dict:
    """Stream `path` into `out_dir` (unless already built); returns the store: rows (TokenRows over the memory-mapped
    ids), labels (a pandas Series of the raw target), keys (a uint64 hash per text, case and spacing ignored),
    sample (the first chunk's text and target columns), text_col."""

    path, out = Path(path), Path(out_dir)
    if (out / "meta.json").is_file():
        return _open(out)
    dtype = np.dtype(token_dtype(len(tokenizer)))  # what tokenize_texts writes
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        found = _write(iter_chunks(path, chunk_rows, dtypes={})[0], tmp, tokenizer, max_length, text_col, target)
    except (DataError, UnicodeDecodeError, ValueError, pd.errors.ParserError):
        # not streamable as is (a single JSON document, a latin-1 CSV, a malformed line): read it whole, with
        # load_table's encoding fallback and its clear errors for files that cannot be read at all
        found = _write([load_table(path)], tmp, tokenizer, max_length, text_col, target)
    lengths, labels, keys, sample = found
    np.save(tmp / "lengths.npy", lengths)
    np.save(tmp / "keys.npy", keys)
    _to_parquet(labels.to_frame("label"), tmp / "labels.parquet")
    _to_parquet(sample, tmp / "sample.parquet")
    (tmp / "meta.json").write_text(json.dumps({"text_col": text_col, "dtype": dtype.name, "n_rows": int(len(lengths)),
                                               "tokens": int(lengths.sum()), "max_length": max_length}))
    try:
        os.replace(tmp, out)
    except OSError:  # another process finished the same store first
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return _open(out)


def _write(chunks, tmp: Path, tokenizer, max_length: int, text_col: str, target: str):
    lengths, labels, keys, sample = [], [], [], None
    with open(tmp / "ids.bin", "wb") as fh:
        for chunk in chunks:
            if sample is None:
                sample = chunk[[text_col, target]].copy()
            texts = chunk[text_col].map(as_text).tolist()
            rows = tokenize_texts(tokenizer, texts, max_length)
            rows.ids.tofile(fh)
            lengths.append(rows.lengths)
            labels.append(chunk[target].reset_index(drop=True))
            keys.append(pd.util.hash_array(np.array([text_key(t) for t in texts], dtype=object)))
    return (np.concatenate(lengths), pd.concat(labels, ignore_index=True), np.concatenate(keys), sample)


def _open(out: Path) -> dict:
    meta = json.loads((out / "meta.json").read_text())
    lengths = np.load(out / "lengths.npy", allow_pickle=False)
    ids = np.memmap(out / "ids.bin", dtype=meta["dtype"], mode="r") if meta["tokens"] else np.zeros(0, meta["dtype"])
    return {"rows": TokenRows(ids, starts_of(lengths), lengths), "labels": pd.read_parquet(out / "labels.parquet")["label"],
            "keys": np.load(out / "keys.npy", allow_pickle=False), "sample": pd.read_parquet(out / "sample.parquet"), **meta}


def _to_parquet(df: pd.DataFrame, path: Path) -> None:
    """Parquet, with object columns Arrow cannot type (numbers and strings mixed) written as strings."""
    import pyarrow as pa

    try:
        df.to_parquet(path, index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        mixed = {c: df[c].map(lambda v: v if pd.isna(v) else str(v)) for c in df.columns if df[c].dtype == object}
        df.assign(**mixed).to_parquet(path, index=False)


def as_text(value) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return str(value)


def text_key(text: str) -> str:
    """Texts that differ only in case or spacing count as duplicates."""
    return " ".join(text.split()).lower()
