"""Evaluating a language model on held-out text: perplexity, next-token accuracy, samples, before/after.

    report = evaluate_language_model(lm, "heldout.txt", compare=base_lm)

Text (files, folders, JSONL documents) is tokenised with the model's own
tokenizer, packed into windows of the model's context and scored token by
token. A JSONL file of prompt/response pairs is scored on the responses only
(as instruction tuning trains); one of prompt/chosen/rejected triples reports
the margin log p(chosen) - log p(rejected) and how often it is positive (the
win rate), the measure DPO raises. With `compare`, the same prompts and data go
through both models, so a fine-tune is shown next to its base.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from trainyard.errors import DataError
from trainyard.lm.corpus import iter_jsonl, read_documents
from trainyard.lm.finetune import response_loss
from trainyard.lm.generate import Sampling, generate
from trainyard.lm.model import context_length
from trainyard.lm.preference import pair_logps
from trainyard.lm.pretrain import UNIGRAM_FILE, held_out_loss, unigram_perplexity
from trainyard.lm.sft import PROMPT_KEYS, RESPONSE_KEYS, chat_prompt, encode_example, read_pairs


def evaluate_language_model(lm, data, *, compare=None, context: int | None = None, batch_size: int = 8, prompts: list[str] | None = None,
                            max_tokens: int = 40, n_samples: int = 3, max_windows: int = 2000) -> dict:
    report = {"data": str(data), "model": _score(lm, data, context, batch_size, max_windows)}
    prompts = prompts or report["model"].pop("prompts")[:n_samples]
    report["model"].pop("prompts", None)
    if compare is not None:
        report["compare"] = _score(compare, data, context, batch_size, max_windows)
        report["compare"].pop("prompts", None)
    greedy = Sampling(max_tokens=max_tokens, temperature=0, stop=("\n\n",))
    report["samples"] = [{"prompt": p, "model": generate(lm.model, lm.tokenizer, p, greedy).text,
                          **({"compare": generate(compare.model, compare.tokenizer, p, greedy).text} if compare is not None else {})}
                         for p in prompts]
    return report


def _score(lm, data, context, batch_size, max_windows) -> dict:
    ctx = min(context or 10**9, context_length(lm.model.config))
    triples = _pairs(data, preference=True)
    if triples is not None:
        logps = pair_logps(lm.model, [(encode_example(lm.tokenizer, p, c, ctx), encode_example(lm.tokenizer, p, r, ctx)) for p, c, r in triples],
                           lm.tokenizer.pad_token_id, batch_size)
        margin = logps[:, 0] - logps[:, 1]
        return {"margin": float(margin.mean()), "win_rate": float((margin > 0).float().mean()), "chosen_logp": float(logps[:, 0].mean()),
                "rejected_logp": float(logps[:, 1].mean()), "scored": "pairs", "examples": len(triples),
                "prompts": [chat_prompt(lm.tokenizer, p) for p, _, _ in triples]}
    pairs = _pairs(data)
    if pairs is not None:
        rows = [encode_example(lm.tokenizer, p, r, ctx) for p, r in pairs]
        scores = response_loss(lm.model, rows, lm.tokenizer.pad_token_id, batch_size)
        return {"perplexity": scores["val_perplexity"], "loss": scores["val_loss"], "accuracy": scores["val_accuracy"],
                "scored": "responses", "examples": len(rows), "prompts": [chat_prompt(lm.tokenizer, p) for p, _ in pairs]}
    from trainyard.lm.shards import windows

    docs = [d.strip() for d in read_documents([data]) if d.strip()]
    ids = []
    for doc_ids in lm.tokenizer(docs, add_special_tokens=False)["input_ids"]:
        ids.extend([*doc_ids, lm.tokenizer.eos_token_id])
    tokens = np.asarray(ids, dtype=np.int64)
    n = (len(tokens) - 1) // ctx
    if n < 1:
        ctx, n = len(tokens) - 1, 1
        if ctx < 2:
            raise DataError(f"{data} holds too little text to evaluate ({len(tokens)} tokens).", "pass a longer held-out text.")
    idx = np.unique(np.linspace(0, n - 1, min(n, max_windows)).astype(int))
    scores = held_out_loss(lm.model, tokens, idx, ctx, batch_size)
    out = {"perplexity": scores["val_perplexity"], "loss": scores["val_loss"], "accuracy": scores["val_accuracy"], "scored": "text",
           "tokens": int(len(idx) * ctx), "documents": len(docs), "prompts": [" ".join(d.split()[:4]) for d in docs]}
    counts = Path(lm.directory) / UNIGRAM_FILE if lm.directory else None
    if counts is not None and counts.is_file():  # a pre-trained model: the unigram baseline of its corpus, on the same tokens
        targets = windows(tokens, idx, ctx)[1].numpy().ravel()
        out["unigram_perplexity"] = unigram_perplexity(np.load(counts), targets)
    return out


def _pairs(data, preference: bool = False):
    """Prompt/response pairs (or with `preference`, prompt/chosen/rejected triples) when `data` is such a JSONL file, else None."""
    path = Path(data)
    if path.suffix != ".jsonl" or not path.is_file():
        return None
    first = next(iter_jsonl(path), (0, {}))[1]
    if not (isinstance(first, dict) and any(k in first for k in PROMPT_KEYS)):
        return None
    if preference:
        return read_pairs(path, (PROMPT_KEYS, ("chosen",), ("rejected",))) if "chosen" in first and "rejected" in first else None
    if any(k in first for k in RESPONSE_KEYS):
        return read_pairs(path)
    return None
