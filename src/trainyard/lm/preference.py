"""Preference-tuning plan (--task preference --method dpo): chosen/rejected pairs, Direct Preference Optimisation.
(`--method rloo`, policy gradient against a reward model, is trainyard.lm.policy.)

DPO raises log p(chosen) - log p(rejected) relative to the reference model
(the base before training): loss = -log sigmoid(beta * ((pc - rc) - (pr - rr))),
p/r the policy's and the reference's summed log-probabilities of a response.
The reference's log-probabilities are computed once, before training, and
cached in the run directory, so no second model is kept in memory and a
resumed run does not recompute them.
"""

from __future__ import annotations

import numpy as np

from trainyard.errors import ConfigError
from trainyard.lm import policy
from trainyard.lm.artifact import load_base
from trainyard.lm.finetune import base_info, split_rows, with_lora
from trainyard.lm.model import context_length
from trainyard.lm.settings import TaskSetup
from trainyard.lm.sft import IGNORE, PROMPT_KEYS, chat_prompt, encode_example, pad_batch, read_pairs

METHODS = ("dpo", "rloo")


def plan(data, s, ws, run_dir, emit) -> TaskSetup:
    import torch

    from trainyard.engine.batches import IndexedBatches

    if s.method not in METHODS:
        raise ConfigError(f"'{s.method}' is not a preference method.", f"use one of {', '.join(METHODS)}.")
    if s.method == "rloo":
        return policy.plan(data, s, ws, run_dir, emit)
    base = load_base(s.base, ws.home).merged()  # an adapter as the base: start from its merged weights
    tok = base.tokenizer
    triples = read_pairs(data, (PROMPT_KEYS, ("chosen",), ("rejected",)))
    train_t, val_t = split_rows(triples, s.val_fraction, s.seed)
    max_len = min(s.context, context_length(base.model.config))

    def encode(rows):
        return [(encode_example(tok, p, c, max_len), encode_example(tok, p, r, max_len)) for p, c, r in rows]

    train_rows, val_rows = encode(train_t), encode(val_t)
    cache = run_dir / "reference_logps.pt"
    if cache.is_file():
        ref = torch.load(cache, weights_only=True)
    else:
        emit("stage", {"message": f"computing reference log-probabilities for {len(train_rows) + len(val_rows)} pairs (once)"})
        ref = {"train": pair_logps(base.model, train_rows, tok.pad_token_id, s.batch_size),
               "val": pair_logps(base.model, val_rows, tok.pad_token_id, s.batch_size)}
        torch.save(ref, cache)
    lm = with_lora(base, s) if s.lora else base
    pad = tok.pad_token_id

    def load(idx, gen):
        return {"ref": ref["train"][torch.as_tensor(np.asarray(idx))], "pairs": [train_rows[i] for i in idx]}  # a tensor first: the loop counts rows by it

    batches = IndexedBatches(len(train_rows), s.batch_size, load)

    def loss_fn(model, batch):
        return dpo_loss(pair_logps(model, batch["pairs"], pad, len(batch["pairs"]), grad=True), batch["ref"], s.beta)[0]

    def evaluate(model) -> dict:
        policy = pair_logps(model, val_rows, pad, s.batch_size)
        loss, stats = dpo_loss(policy, ref["val"], s.beta)
        return {"val_loss": float(loss), **stats}

    before = evaluate(base.model)
    return TaskSetup(lm, batches, loss_fn, evaluate, [chat_prompt(tok, p) for p, _, _ in val_t[:s.samples]],
                meta={"family": base.meta.get("family") or type(base.model).__name__,
                      "baseline": {"val_margin_before": before["val_margin"], "val_win_rate_before": before["val_win_rate"]},
                      "artifact": {**base_info(base, s), "method": s.method, "beta": s.beta}})


def dpo_loss(policy, ref, beta: float):
    """(mean DPO loss, stats): policy and ref are (n, 2) summed log-probs of (chosen, rejected)."""
    import torch.nn.functional as F

    policy_d = policy.detach()
    logits = beta * ((policy[:, 0] - ref[:, 0]) - (policy[:, 1] - ref[:, 1]))
    loss = -F.logsigmoid(logits).mean()
    stats = {"val_margin": float((policy_d[:, 0] - policy_d[:, 1]).mean()),  # log p(chosen) - log p(rejected)
             "val_win_rate": float((policy_d[:, 0] > policy_d[:, 1]).float().mean()),  # pairs with a positive margin
             "val_reward_accuracy": float((logits.detach() > 0).float().mean()), "val_reward_margin": float(logits.detach().mean() / beta)}
    return loss, stats


def pair_logps(model, pairs, pad_id: int, batch_size: int, grad: bool = False):
    """(n, 2) tensor: summed log-probability of the chosen and of the rejected response under `model`."""
    import contextlib

    import torch


    device = next(model.parameters()).device
    out = []
    with contextlib.nullcontext() if grad else torch.no_grad():
        for i in range(0, len(pairs), batch_size):
            chunk = pairs[i:i + batch_size]
            b = {k: v.to(device) for k, v in pad_batch([c for c, _ in chunk] + [r for _, r in chunk], pad_id).items()}
            logits = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits[:, :-1].float()
            y = b["labels"][:, 1:]
            keep = y != IGNORE
            logp = torch.log_softmax(logits, -1).gather(-1, y.clamp(min=0).unsqueeze(-1)).squeeze(-1)
            sums = (logp * keep).sum(-1)
            out.append(torch.stack([sums[:len(chunk)], sums[len(chunk):]], 1))
    result = torch.cat(out)
    return result if grad else result.detach().cpu()
