"""Instruction data: chat template, loss on the response only."""

from __future__ import annotations

import json

import pytest
import torch

from trainyard.errors import DataError
from trainyard.lm.sft import IGNORE, encode_example, pad_batch, read_pairs, token_loss
from lmhelp import corpus_dir, tiny_model, tokenizer, one_torch_thread  # noqa: F401  (fixtures)


def test_labels_cover_the_response_only(tokenizer):
    ids, labels = encode_example(tokenizer, "Where did the cat sit?", "On the mat.", max_len=64)
    assert len(ids) == len(labels)
    answer = [i for i, y in zip(ids, labels) if y != IGNORE]
    assert tokenizer.decode(answer) == "On the mat.<|endoftext|>"
    prompt = tokenizer.decode([i for i, y in zip(ids, labels) if y == IGNORE])
    assert prompt == "<|user|>\nWhere did the cat sit?\n<|assistant|>\n"
    assert all(y == i for i, y in zip(ids, labels) if y != IGNORE)


def test_long_prompts_keep_the_response(tokenizer):
    ids, labels = encode_example(tokenizer, "word " * 200, "Short answer.", max_len=40)
    assert len(ids) == 40 and tokenizer.decode([i for i, y in zip(ids, labels) if y != IGNORE]) == "Short answer.<|endoftext|>"


def test_loss_ignores_prompt_and_padding(tokenizer, tiny_model):
    rows = [encode_example(tokenizer, "Say hi", "hi", 64), encode_example(tokenizer, "A much longer question about owls?", "Owls fly.", 64)]
    batch = pad_batch(rows, tokenizer.pad_token_id)
    assert batch["input_ids"].shape[0] == 2 and (batch["labels"][0, len(rows[0][0]):] == IGNORE).all()
    base = token_loss(tiny_model, batch)
    # changing a prompt label position's target changes nothing; the loss only reads response labels
    tampered = {k: v.clone() for k, v in batch.items()}
    tampered["input_ids"][0, len(rows[0][0]):] = 5  # padding content is masked out
    assert torch.allclose(token_loss(tiny_model, tampered), base)
    only_answer = {k: v.clone() for k, v in batch.items()}
    only_answer["labels"][:, :] = IGNORE
    assert torch.isnan(token_loss(tiny_model, only_answer))  # nothing to learn from when every label is masked


def test_read_pairs_accepts_common_field_names(tmp_path):
    path = tmp_path / "i.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in [{"prompt": "a", "response": "b"}, {"instruction": "c", "input": "d", "output": "e"}]))
    assert read_pairs(path) == [("a", "b"), ("c\nd", "e")]
    path.write_text(json.dumps({"question": "q"}))
    with pytest.raises(DataError, match="none of the fields"):
        read_pairs(path)
