"""Tokenised shards: the corpus tokenised once into flat .bin files, then memory-mapped for training.

    shards/
      train.bin   every kept training document's token ids, each followed by EOS (uint16, or uint32 for big vocabularies)
      val.bin     held-out documents (chosen by a hash of the text, so the split is stable)
      meta.json   dtype, token counts, the corpus report, and the key of the inputs it was built from

`prepare_shards` skips the work when meta.json's key matches (same files,
sizes, modification times, tokenizer and rules). Training reads fixed windows
of `context + 1` tokens from a `numpy.memmap`: documents are packed back to
back, separated by EOS, so no token is padding.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path

import numpy as np

from trainyard.data.tokens import token_dtype
from trainyard.errors import DataError
from trainyard.lm.corpus import CorpusReport, QualityRules, clean_documents, corpus_files, read_documents

META = "meta.json"


def prepare_shards(paths: Iterable[str | os.PathLike], tokenizer, out_dir: str | os.PathLike, *, val_fraction: float = 0.01,
                   rules: QualityRules = QualityRules(), separator: str | None = None, text_field: str | None = None,
                   batch_docs: int = 256) -> dict:
    """Tokenise the corpus into out_dir (unless already done for these inputs); returns meta.json's content."""
    paths = [Path(p) for p in paths]
    out = Path(out_dir)
    key = shards_key(paths, tokenizer, rules=rules, separator=separator, text_field=text_field, val_fraction=val_fraction)
    if (out / META).is_file():
        meta = json.loads((out / META).read_text())
        if meta.get("key") == key:
            return meta
    out.mkdir(parents=True, exist_ok=True)
    dtype = token_dtype(len(tokenizer))
    eos = tokenizer.eos_token_id
    report = CorpusReport()
    counts = {"train": 0, "val": 0}
    tmp = {split: out / f".{split}.bin.tmp" for split in counts}
    handles = {split: open(tmp[split], "wb") for split in counts}
    try:
        pending: list[str] = []

        def flush() -> None:
            if not pending:
                return
            for doc, ids in zip(pending, tokenizer(pending, add_special_tokens=False)["input_ids"]):
                split = "val" if _is_val(doc, val_fraction) else "train"
                arr = np.asarray([*ids, eos], dtype=dtype)
                arr.tofile(handles[split])
                counts[split] += len(arr)
            pending.clear()

        for doc in clean_documents(read_documents(paths, separator, text_field), rules, report):
            pending.append(doc)
            if len(pending) >= batch_docs:
                flush()
        flush()
    finally:
        for fh in handles.values():
            fh.close()
    if counts["train"] == 0:
        for t in tmp.values():
            t.unlink(missing_ok=True)
        raise DataError(f"No documents left to train on ({report.read} read, dropped: {dict(report.dropped) or 'none'}).",
                        "add more text, or relax the filters (e.g. --min-chars).")
    for split, t in tmp.items():
        os.replace(t, out / f"{split}.bin")
    meta = {"key": key, "dtype": np.dtype(dtype).name, "vocab_size": len(tokenizer), "eos_id": eos, "tokens": counts,
            "report": report.to_dict(), "val_fraction": val_fraction}
    (out / META).write_text(json.dumps(meta, indent=2))
    return meta


def open_tokens(out_dir: str | os.PathLike, split: str = "train") -> np.memmap | None:
    """The split's token ids as a read-only memory map (None when the split is empty)."""
    out = Path(out_dir)
    meta = json.loads((out / META).read_text())
    if meta["tokens"][split] == 0:
        return None
    return np.memmap(out / f"{split}.bin", dtype=meta["dtype"], mode="r")


def n_windows(tokens: np.ndarray | None, context: int) -> int:
    return 0 if tokens is None else max(0, (len(tokens) - 1) // context)


def windows(tokens: np.ndarray, indices: np.ndarray, context: int):
    """(inputs, targets) int64 tensors of shape (len(indices), context): window i covers tokens[i*context : i*context+context+1]."""
    import torch

    rows = np.stack([tokens[i * context:i * context + context + 1] for i in np.asarray(indices)]).astype(np.int64)
    rows = torch.from_numpy(rows)
    return rows[:, :-1], rows[:, 1:]


def _is_val(doc: str, fraction: float) -> bool:
    if fraction <= 0:
        return False
    h = int.from_bytes(hashlib.sha1(doc.encode("utf-8", "replace")).digest()[:4], "big")
    return h % 100_000 < fraction * 100_000


def shards_key(paths, tokenizer, *, rules: QualityRules = QualityRules(), separator=None, text_field=None, val_fraction=0.01) -> str:
    """A hash of everything the shards depend on: the files (path, size, mtime), the tokenizer, the rules and the split."""
    h = hashlib.sha256()
    for f in corpus_files(paths):
        st = f.stat()
        h.update(f"{f.resolve()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    vocab = tokenizer.get_vocab()
    h.update(json.dumps(sorted(vocab.items())).encode())
    h.update(json.dumps([asdict(rules), separator, text_field, val_fraction]).encode())
    return h.hexdigest()
