"""Instruction-tuning plan (--task sft): prompt/response pairs, loss on the response, full or LoRA.

With --lora the base weights stay frozen and PEFT adds rank-r adapters to
every linear layer; the registered artifact holds only the adapter (a few
hundred KB) and names its base, and `trainyard merge` folds it in. Without
--lora every weight is trained and the full model is registered.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from trainyard.errors import DataError
from trainyard.lm.artifact import LanguageModel, load_base, quiet_transformers
from trainyard.lm.memory import quantized
from trainyard.lm.model import context_length
from trainyard.lm.settings import TaskSetup
from trainyard.lm.sft import IGNORE, chat_prompt, encode_example, pad_batch, padded_rows, read_pairs, token_loss


def plan(data, s, ws, run_dir, emit) -> TaskSetup:
    from trainyard.engine.batches import IndexedBatches

    base = load_base(s.base, ws.home)
    base = quantized(base, s) if s.quantize else base.merged()  # an adapter as the base: start from its merged weights
    tok = base.tokenizer
    pairs = read_pairs(data)
    train_pairs, val_pairs = split_rows(pairs, s.val_fraction, s.seed)
    max_len = min(s.context, context_length(base.model.config))
    rows = [encode_example(tok, p, r, max_len) for p, r in train_pairs]
    val_rows = [encode_example(tok, p, r, max_len) for p, r in val_pairs]
    lm = with_lora(base, s) if s.lora else base
    pad = tok.pad_token_id
    # partials of module functions, not closures: the batches and the evaluation travel to data-parallel ranks (lm/parallel.py)
    batches = IndexedBatches(len(rows), s.batch_size, partial(padded_rows, rows, pad), lengths=np.array([len(x) for x, _ in rows]))
    evaluate = partial(response_loss, rows=val_rows, pad_id=pad, batch_size=s.batch_size)
    return TaskSetup(lm, batches, token_loss, evaluate, [chat_prompt(tok, p) for p, _ in val_pairs[:s.samples]],
                meta={"family": base.meta.get("family") or type(base.model).__name__, "artifact": base_info(base, s)})


def with_lora(base, s):
    import torch
    from peft import LoraConfig, get_peft_model

    quiet_transformers()
    cfg = LoraConfig(r=s.lora_r, lora_alpha=s.lora_alpha or 2 * s.lora_r, lora_dropout=0.0, target_modules="all-linear",
                     task_type="CAUSAL_LM", fan_in_fan_out=base.model.config.model_type == "gpt2")  # GPT-2's Conv1D stores weights transposed
    with torch.random.fork_rng(devices=[]):  # the adapter's initial weights follow --seed, whatever ran before in the process
        torch.manual_seed(s.seed)
        model = get_peft_model(base.model, cfg)
    return LanguageModel(model, base.tokenizer, base.meta)


def base_info(base, s) -> dict:
    ref = base.meta.get("ref") or base.meta.get("source")
    info = {"base_model": ref, "lora": bool(s.lora)}
    if s.lora:
        info["base"] = {"ref": ref}
        info["lora_config"] = {"r": s.lora_r, "alpha": s.lora_alpha or 2 * s.lora_r}
    return info


def split_rows(rows: list, fraction: float, seed: int) -> tuple[list, list]:
    """A seeded shuffle, then at least one row (and `fraction` of them) held out for validation."""
    if len(rows) < 2:
        raise DataError(f"Only {len(rows)} example: need at least 2 (one to train on, one to check on).", "add more examples.")
    order = np.random.default_rng(seed).permutation(len(rows))
    n_val = min(len(rows) - 1, max(1, round(fraction * len(rows))))
    return [rows[i] for i in order[n_val:]], [rows[i] for i in order[:n_val]]


def response_loss(model, rows, pad_id: int, batch_size: int) -> dict:
    """Token-weighted loss and next-token accuracy over the response tokens of `rows`."""
    import math

    import torch
    import torch.nn.functional as F


    device = next(model.parameters()).device
    total, correct, count = 0.0, 0, 0
    with torch.no_grad():
        for i in range(0, len(rows), batch_size):
            b = {k: v.to(device) for k, v in pad_batch(rows[i:i + batch_size], pad_id).items()}
            logits = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits[:, :-1].float()
            y = b["labels"][:, 1:]
            total += float(F.cross_entropy(logits.flatten(0, 1), y.flatten(), ignore_index=IGNORE, reduction="sum"))
            keep = y != IGNORE
            correct += int(((logits.argmax(-1) == y) & keep).sum())
            count += int(keep.sum())
    loss = total / max(count, 1)
    return {"val_loss": loss, "val_perplexity": math.exp(min(loss, 50)), "val_accuracy": correct / max(count, 1)}
