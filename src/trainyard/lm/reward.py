"""Reward models (--task reward): a scalar head on a language model, trained on chosen/rejected pairs.

    trainyard train prefs.jsonl --task reward --base lm@3      # registers a `reward-model` artifact

The base's transformer gets a linear head that maps the hidden state of the
last token of prompt + response to one number (Hugging Face's
`*ForSequenceClassification` with one label, so the artifact loads with
`AutoModelForSequenceClassification.from_pretrained`). Training minimises the
Bradley-Terry loss `-log sigmoid(r(chosen) - r(rejected))`; reported on the
held-out pairs: `val_accuracy` (share of pairs ranked right) and `val_margin`
(mean r(chosen) - r(rejected)). `--task preference --method rloo` uses such a
model to score the policy's samples (trainyard.lm.policy).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from trainyard.errors import ConfigError, NotFoundError
from trainyard.lm.artifact import LanguageModel, hf_errors_only, load_base, quiet_transformers
from trainyard.lm.finetune import base_info, split_rows
from trainyard.lm.model import context_length
from trainyard.lm.settings import TaskSetup
from trainyard.lm.sft import PROMPT_KEYS, encode_example, pad_batch, read_pairs
from trainyard.lm.tokenizer import load_tokenizer
from trainyard.registry.artifact import register_loader
from trainyard.registry.loading import load_with_meta

KIND = "reward-model"


class RewardModel:
    """A sequence-scoring model with its tokenizer: what `trainyard.load("rm@1")` returns for a reward model."""

    kind = KIND

    def __init__(self, model, tokenizer, meta: dict | None = None):
        self.model = model
        self.tokenizer = tokenizer
        self.meta = meta or {}

    @classmethod
    def from_artifact(cls, directory: Path, meta: dict) -> "RewardModel":
        from transformers import AutoModelForSequenceClassification


        quiet_transformers()
        model = AutoModelForSequenceClassification.from_pretrained(str(directory))
        model.eval()
        return cls(model, load_tokenizer(directory), meta)

    def score(self, prompts: list[str], responses: list[str], batch_size: int = 16) -> list[float]:
        """The reward of each response to its prompt (the prompt goes through the chat template, as in training)."""
        import torch


        max_len = context_length(self.model.config)
        rows = [encode_example(self.tokenizer, p, r, max_len) for p, r in zip(prompts, responses)]
        with torch.no_grad():
            return scores(self.model, rows, self.tokenizer.pad_token_id, batch_size).tolist()


def evaluate_pairs(rm: RewardModel, path: str | os.PathLike, batch_size: int = 16) -> dict:
    """How a reward model ranks the chosen/rejected pairs of a JSONL file: accuracy and mean margin."""
    rows = read_pairs(path, (PROMPT_KEYS, ("chosen",), ("rejected",)))
    chosen = rm.score([p for p, _, _ in rows], [c for _, c, _ in rows], batch_size)
    rejected = rm.score([p for p, _, _ in rows], [r for _, _, r in rows], batch_size)
    diff = [c - r for c, r in zip(chosen, rejected)]
    return {"pairs": len(rows), "accuracy": sum(d > 0 for d in diff) / len(diff), "margin": sum(diff) / len(diff),
            "chosen_reward": sum(chosen) / len(chosen), "rejected_reward": sum(rejected) / len(rejected)}


def load_reward_model(ref: str, workspace: str | os.PathLike | None = None) -> RewardModel:
    model, meta = load_with_meta(ref, workspace)
    if not isinstance(model, RewardModel):
        raise NotFoundError(f"'{ref}' is not a reward model.", "train one with `trainyard train prefs.jsonl --task reward --base lm@1` and pass its ref.")
    return model


def reward_head_model(base, seed: int):
    """The base's transformer weights under a freshly initialised (seeded) scalar head."""
    import tempfile

    import torch
    from transformers import AutoModelForSequenceClassification


    with tempfile.TemporaryDirectory(prefix="trainyard-rm-") as tmp:
        base.model.save_pretrained(tmp, safe_serialization=True)
        torch.manual_seed(seed)
        with hf_errors_only():  # "some weights are newly initialised": the head, on purpose
            model = AutoModelForSequenceClassification.from_pretrained(tmp, num_labels=1, pad_token_id=base.tokenizer.pad_token_id)
    model.config.problem_type = "regression"
    return model


def scores(model, rows, pad_id: int, batch_size: int):
    """One scalar per (ids, labels) row: the head on the hidden state of the row's last token (right padding)."""
    import torch


    device = next(model.parameters()).device
    out = []
    for i in range(0, len(rows), batch_size):
        b = {k: v.to(device) for k, v in pad_batch(rows[i:i + batch_size], pad_id).items()}
        hidden = model.base_model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).last_hidden_state
        last = b["attention_mask"].sum(1) - 1
        out.append(model.score(hidden[torch.arange(len(last), device=device), last]).squeeze(-1).float())
    return torch.cat(out) if out else torch.zeros(0)


def plan(data, s, ws, run_dir, emit) -> TaskSetup:
    import torch
    import torch.nn.functional as F

    from trainyard.engine.batches import IndexedBatches

    if s.lora:
        raise ConfigError("--task reward trains every weight; --lora is not supported for reward models.", "drop --lora.")
    base = load_base(s.base, ws.home).merged()
    tok = base.tokenizer
    train_t, val_t = split_rows(read_pairs(data, (PROMPT_KEYS, ("chosen",), ("rejected",))), s.val_fraction, s.seed)
    max_len = min(s.context, context_length(base.model.config))

    def encode(rows):  # chosen rows then rejected rows, so one forward pass scores a batch of pairs
        return [(encode_example(tok, p, c, max_len), encode_example(tok, p, r, max_len)) for p, c, r in rows]

    train_rows, val_rows = encode(train_t), encode(val_t)
    model = reward_head_model(base, s.seed)
    pad = tok.pad_token_id

    def pair_scores(m, pairs, batch_size):
        r = scores(m, [c for c, _ in pairs] + [x for _, x in pairs], pad, max(batch_size, 1) * 2)
        return r[:len(pairs)], r[len(pairs):]

    def load(idx, gen):
        return {"rows": torch.as_tensor(np.asarray(idx)), "pairs": [train_rows[i] for i in idx]}  # a tensor first: the loop counts rows by it

    def loss_fn(m, batch):
        chosen, rejected = pair_scores(m, batch["pairs"], len(batch["pairs"]))
        return -F.logsigmoid(chosen - rejected).mean()

    def evaluate(m) -> dict:
        chosen, rejected = pair_scores(m, val_rows, s.batch_size)
        diff = chosen - rejected
        return {"val_loss": float(-F.logsigmoid(diff).mean()), "val_accuracy": float((diff > 0).float().mean()),
                "val_margin": float(diff.mean())}

    with torch.no_grad():
        before = evaluate(model)
    return TaskSetup(LanguageModel(model, tok, base.meta), IndexedBatches(len(train_rows), s.batch_size, load), loss_fn, evaluate, [],
                meta={"family": base.meta.get("family") or type(base.model).__name__,
                      "baseline": {"val_accuracy_before": before["val_accuracy"]},
                      "artifact": {**base_info(base, s), "kind": KIND}})


register_loader(KIND)(RewardModel.from_artifact)
