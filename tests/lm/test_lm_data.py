"""Corpus reading, deduplication, quality filters, tokenizer round trip, shards and packing."""

from __future__ import annotations

import json

import numpy as np
import pytest

from trainyard.errors import DataError
from trainyard.lm.corpus import CorpusReport, clean_documents, quality_problem, read_documents
from trainyard.lm.shards import n_windows, open_tokens, prepare_shards, windows
from lmhelp import corpus_dir, tiny_model, tokenizer, one_torch_thread  # noqa: F401  (fixtures)


def test_read_folder_jsonl_and_separator(tmp_path):
    (tmp_path / "a.txt").write_text("first fortune here\n%\nsecond fortune here")
    (tmp_path / "b.jsonl").write_text(json.dumps({"text": "from jsonl", "id": 3}) + "\n\n" + json.dumps({"body": "only string"}) + "\n")
    (tmp_path / "c.bin").write_bytes(b"\x00\x01")  # not a text suffix: ignored in folders
    docs = list(read_documents([tmp_path], separator="\n%\n"))
    assert docs == ["first fortune here", "second fortune here", "from jsonl", "only string"]


def test_bad_jsonl_line_is_a_clear_error(tmp_path):
    (tmp_path / "x.jsonl").write_text('{"text": "ok"}\nnot json\n')
    with pytest.raises(DataError, match="line 2 is not valid JSON"):
        list(read_documents([tmp_path / "x.jsonl"]))


def test_dedup_and_quality_filters():
    good = "A perfectly ordinary paragraph about rivers and hills, long enough to keep."
    docs = [good, good, good.upper().replace(",", " ;"), "short", "spam " * 60,
            "line\n" * 10, "binary\x00\x01\x02\x03 junk" + "\ufffd" * 5 + " more text here", "Another fine paragraph, quite different from the first."]
    report = CorpusReport()
    kept = list(clean_documents(docs, report=report))
    assert kept == [good, "Another fine paragraph, quite different from the first."]
    assert report.dropped == {"duplicate": 1, "near-duplicate": 1, "too-short": 1, "repetitive": 2, "non-text": 1}
    assert quality_problem(good) is None


def test_tokenizer_round_trip_and_save(tokenizer, tmp_path):
    from trainyard.lm.tokenizer import load_tokenizer

    text = "The owl looked at the river. Ünïcödé → 你好 and emoji 🦊 and tabs\tnewlines\n"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == text
    assert max(ids) < len(tokenizer) <= 400
    assert len(tokenizer("The cat sat on the mat.")["input_ids"]) < 10  # common words are merged
    tokenizer.save_pretrained(tmp_path / "tok")
    again = load_tokenizer(tmp_path / "tok")
    assert again(text, add_special_tokens=False)["input_ids"] == ids
    assert again.eos_token == "<|endoftext|>" and again.chat_template


def test_shards_written_once_and_packed(corpus_dir, tokenizer, tmp_path):
    out = tmp_path / "shards"
    meta = prepare_shards([corpus_dir], tokenizer, out, val_fraction=0.1, separator="\n%\n")
    assert meta["report"]["kept"] == 240 and meta["dtype"] == "uint16"
    assert meta["tokens"]["val"] > 0 and meta["tokens"]["train"] > 5 * meta["tokens"]["val"]
    train = open_tokens(out, "train")
    assert isinstance(train, np.memmap) and len(train) == meta["tokens"]["train"]
    assert (train == tokenizer.eos_token_id).sum() + (open_tokens(out, "val") == tokenizer.eos_token_id).sum() == 240
    stamp = (out / "train.bin").stat().st_mtime_ns
    assert prepare_shards([corpus_dir], tokenizer, out, val_fraction=0.1, separator="\n%\n")["key"] == meta["key"]
    assert (out / "train.bin").stat().st_mtime_ns == stamp  # not rewritten
    # packing: windows are consecutive slices, targets are inputs shifted by one, no padding
    context = 32
    x, y = windows(train, np.array([0, 3]), context)
    assert x.shape == (2, context) and n_windows(train, context) == (len(train) - 1) // context
    assert x[1].tolist() == train[96:128].tolist() and y[1].tolist() == train[97:129].tolist()
    text = tokenizer.decode(train[:200].tolist())
    assert "<|endoftext|>The" in text  # documents packed back to back, separated by EOS


def test_empty_corpus_is_a_clear_error(tmp_path, tokenizer):
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "a.txt").write_text("tiny")
    with pytest.raises(DataError, match="No documents left"):
        prepare_shards([tmp_path / "c"], tokenizer, tmp_path / "s")
