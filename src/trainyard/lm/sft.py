"""Instruction data: prompt/response pairs in a chat template, with the loss on the response only.

A JSONL line is {"prompt": ..., "response": ...} (also accepted: instruction/
input/output, question/answer). The prompt goes through the tokenizer's chat
template with the generation prompt appended; the response and EOS follow.
Labels are -100 (ignored by the loss) over the prompt and the padding, so the
model is trained to answer, not to repeat questions.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from trainyard.errors import DataError
from trainyard.lm.corpus import iter_jsonl

IGNORE = -100
PROMPT_KEYS = ("prompt", "instruction", "question")
RESPONSE_KEYS = ("response", "output", "answer", "completion")


def chat_prompt(tokenizer, prompt: str) -> str:
    return tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True)


def read_pairs(path: str | os.PathLike, keys: tuple[tuple[str, ...], ...] = (PROMPT_KEYS, RESPONSE_KEYS)) -> list[tuple[str, ...]]:
    """Rows of a JSONL file as tuples of strings, one per group of accepted keys (first key present wins)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} does not exist.", "pass a JSONL file with one object per line.")
    rows = []
    for number, obj in iter_jsonl(path):
        if not isinstance(obj, dict):
            raise DataError(f"{path} line {number} is not a JSON object.", "write one object per line.")
        values = []
        for group in keys:
            key = next((k for k in group if k in obj), None)
            if key is None:
                raise DataError(f"{path} line {number} has none of the fields {list(group)}.", f"its fields are {sorted(obj)}.")
            values.append(str(obj[key]) + (f"\n{obj['input']}" if key == "instruction" and obj.get("input") else ""))
        rows.append(tuple(values))
    if not rows:
        raise DataError(f"{path} holds no examples.", "add one JSON object per line.")
    return rows


def encode_example(tokenizer, prompt: str, response: str, max_len: int) -> tuple[list[int], list[int]]:
    """(input ids, labels): labels copy the response tokens and EOS, and are IGNORE over the prompt."""
    p = tokenizer(chat_prompt(tokenizer, prompt), add_special_tokens=False)["input_ids"]
    r = tokenizer(response, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    p = p[-max(1, max_len - len(r)):] if len(p) + len(r) > max_len else p  # keep the end of a long prompt
    ids = (p + r)[:max_len]
    labels = ([IGNORE] * len(p) + r)[:max_len]
    return ids, labels


def pad_batch(rows: list[tuple[list[int], list[int]]], pad_id: int):
    """input_ids, labels, attention_mask as int64 tensors, right-padded to the longest row."""
    import torch

    width = max(len(ids) for ids, _ in rows)
    ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    labels = np.full((len(rows), width), IGNORE, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for i, (x, y) in enumerate(rows):
        ids[i, :len(x)], labels[i, :len(y)], mask[i, :len(x)] = x, y, 1
    return {"input_ids": torch.from_numpy(ids), "labels": torch.from_numpy(labels), "attention_mask": torch.from_numpy(mask)}


def padded_rows(rows: list, pad_id: int, idx, gen=None):
    """The batch of `rows[idx]` (IndexedBatches' `load`; bound with functools.partial it pickles, for ranks on Ray)."""
    return pad_batch([rows[i] for i in idx], pad_id)


def label_tokens(batch):
    """Labelled (response) tokens of each row of a padded batch: what `token_loss` averages over."""
    return (batch["labels"][:, 1:] != IGNORE).sum(1)


def token_loss(model, batch):
    """Mean next-token cross-entropy over the positions whose label is not IGNORE."""
    import torch.nn.functional as F

    logits = model(input_ids=batch["input_ids"], attention_mask=batch.get("attention_mask")).logits
    return F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), batch["labels"][:, 1:].flatten(), ignore_index=IGNORE)
