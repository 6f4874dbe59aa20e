"""The token-store cache holds no pickle (issue 16 item 2): a store planted in the cache folder can give wrong
data but cannot run code, and mixed-type labels survive the Parquet files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("transformers")


def test_store_files_are_not_pickles_and_read_back(tmp_path):
    from trainyard.data.tokens import build_token_store
    from trainyard.models.text import load_tokenizer

    data = tmp_path / "texts.csv"
    pd.DataFrame({"text": ["good film", "bad film", "fine", "awful plot"] * 5, "label": ["pos", "neg", 3, "neg"] * 5}).to_csv(data, index=False)
    out = tmp_path / "cache" / "store"
    store = build_token_store(data, out, tokenizer=load_tokenizer("minilm"), max_length=16, text_col="text", target="label")
    names = sorted(p.name for p in out.iterdir())
    assert names == ["ids.bin", "keys.npy", "labels.parquet", "lengths.npy", "meta.json", "sample.parquet"]
    for path in out.iterdir():
        assert not path.read_bytes().startswith(b"\x80"), path  # no pickle protocol header anywhere
    again = build_token_store(data, out, tokenizer=None, max_length=16, text_col="text", target="label")  # reopened
    assert again["labels"].astype(str).tolist() == store["labels"].astype(str).tolist()
    assert again["labels"].astype(str).tolist()[:4] == ["pos", "neg", "3", "neg"]
    assert len(again["rows"]) == 20 and again["sample"].columns.tolist() == ["text", "label"]


def test_a_planted_object_array_is_refused(tmp_path):
    from trainyard.data.tokens import build_token_store
    from trainyard.models.text import load_tokenizer

    data = tmp_path / "texts.csv"
    pd.DataFrame({"text": ["a b", "c d"] * 4, "label": ["x", "y"] * 4}).to_csv(data, index=False)
    out = tmp_path / "store"
    build_token_store(data, out, tokenizer=load_tokenizer("minilm"), max_length=8, text_col="text", target="label")
    np.save(out / "keys.npy", np.array([{"not": "numbers"}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="pickle"):
        build_token_store(Path(data), out, tokenizer=None, max_length=8, text_col="text", target="label")
