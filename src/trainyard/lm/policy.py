"""Policy-gradient preference tuning (--task preference --method rloo): sample, score with a reward model, reinforce.

    trainyard train prompts.jsonl --task preference --method rloo --base lm@3 --reward-model rm@1 [--rollouts 4]

Each step takes a batch of prompts (a `prompt` field; a chosen/rejected file
works too) and samples `--rollouts` k completions of each from the policy
(temperature 1, at most `--max-new-tokens`). The reward model scores them; the
KL penalty `beta * (log pi(y|x) - log ref(y|x))` to the frozen reference (the
base; with --lora the same weights with the adapter switched off, so no copy is
kept) is subtracted. Each completion's advantage is its penalised reward minus
the mean of the other k-1 completions of the same prompt (REINFORCE
leave-one-out, Ahmadian et al. 2024), and the loss is `-advantage * log pi(y|x)`
summed over the completion's tokens. Sampling is seeded per batch from the
engine's batch generator, so a resumed run draws the same completions.

Reported on held-out prompts (k seeded samples each): `val_reward` next to
`val_reward_before` (the base), and `val_kl` (mean log-ratio to the reference).
"""

from __future__ import annotations

import numpy as np

from trainyard.errors import ConfigError
from trainyard.lm.artifact import hf_errors_only, load_base
from trainyard.lm.finetune import base_info, split_rows, with_lora
from trainyard.lm.model import context_length
from trainyard.lm.reward import load_reward_model
from trainyard.lm.settings import TaskSetup
from trainyard.lm.sft import PROMPT_KEYS, chat_prompt, read_pairs


def plan(data, s, ws, run_dir, emit) -> TaskSetup:
    import copy

    import torch

    from trainyard.engine.batches import IndexedBatches

    if not s.reward_model:
        raise ConfigError("--method rloo scores samples with a reward model, but no --reward-model was given.",
                          "train one with `trainyard train prefs.jsonl --task reward --base lm@1`, then pass --reward-model rm@1.")
    if s.rollouts < 2:
        raise ConfigError(f"--rollouts must be at least 2 for a leave-one-out baseline, got {s.rollouts}.", "use --rollouts 4.")
    base = load_base(s.base, ws.home).merged()
    rm = load_reward_model(s.reward_model, ws.home)
    tok = base.tokenizer
    if len(rm.tokenizer) != len(tok):
        raise ConfigError(f"The reward model {s.reward_model} has a different vocabulary ({len(rm.tokenizer)} tokens) from the base ({len(tok)}).",
                          "train the reward model on the same base (or one sharing its tokenizer).")
    rm.model.requires_grad_(False)
    train_p, val_p = split_rows([p for (p,) in read_pairs(data, (PROMPT_KEYS,))], s.val_fraction, s.seed)
    limit = min(s.context, context_length(base.model.config))
    max_new = max(1, min(s.max_new_tokens, limit // 2))

    def encode(prompt):
        return tok(chat_prompt(tok, prompt), add_special_tokens=False)["input_ids"][-(limit - max_new):]

    train_ids, val_ids = [encode(p) for p in train_p], [encode(p) for p in val_p]
    lm = with_lora(base, s) if s.lora else base
    reference = None if s.lora else copy.deepcopy(base.model).requires_grad_(False).eval()
    roll = Rollouts(tok, rm, reference, s.rollouts, max_new, s.beta)

    def load(idx, gen):
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=gen))
        return {"rows": torch.as_tensor(np.asarray(idx)), "seed": seed}  # a tensor first: the loop counts rows by it

    def loss_fn(model, batch):
        prompts = [train_ids[i] for i in batch["rows"].tolist()]
        return roll.loss(model, prompts, [train_p[i] for i in batch["rows"].tolist()], batch["seed"])

    def evaluate(model) -> dict:
        return roll.evaluate(model, val_ids, val_p, seed=s.seed)

    with torch.no_grad():
        before = evaluate(lm.model)  # the policy at step 0 (with --lora: the adapter starts as a no-op)
    return TaskSetup(lm, IndexedBatches(len(train_ids), s.batch_size, load), loss_fn, evaluate, [chat_prompt(tok, p) for p in val_p[:s.samples]],
                meta={"family": base.meta.get("family") or type(base.model).__name__,
                      "baseline": {"val_reward_before": before["val_reward"]},
                      "artifact": {**base_info(base, s), "method": s.method, "beta": s.beta, "reward_model": s.reward_model,
                                   "rollouts": s.rollouts}},
                loop={"spike_factor": None})  # a policy-gradient loss changes sign and scale with the advantages: no spike rollback


class Rollouts:
    """Sampling k completions per prompt, their rewards, log-probabilities and the RLOO loss."""

    def __init__(self, tokenizer, reward_model, reference, k: int, max_new: int, beta: float):
        self.tok, self.rm, self.reference = tokenizer, reward_model, reference
        self.k, self.max_new, self.beta = k, max_new, beta

    def sample(self, model, prompt_ids: list[int], seed: int):
        """(k, prompt + new) token ids and the (k, same) mask of the completion tokens (through the first EOS)."""
        import torch


        device = next(model.parameters()).device
        x = torch.tensor([prompt_ids] * self.k, device=device)
        was_training = model.training
        model.eval()
        try:  # generate's decoding steps feed the pad token after a finished row's EOS and warn about padding without a
            # mask: harmless here, the k rows share one unpadded prompt
            with torch.random.fork_rng(devices=[]), torch.no_grad(), hf_errors_only():
                torch.manual_seed(seed)
                out = model.generate(input_ids=x, attention_mask=torch.ones_like(x), do_sample=True, temperature=1.0, top_k=0, top_p=1.0,
                                     max_new_tokens=self.max_new, min_new_tokens=1, eos_token_id=self.tok.eos_token_id,
                                     pad_token_id=self.tok.pad_token_id)
        finally:
            model.train(was_training)
        mask = torch.zeros_like(out, dtype=torch.bool)
        new = out[:, len(prompt_ids):]
        ended = (new == self.tok.eos_token_id).long().cumsum(1)
        mask[:, len(prompt_ids):] = (ended == 0) | ((ended == 1) & (new == self.tok.eos_token_id))  # through the first EOS
        return out, mask

    def rewards(self, prompt: str, seqs, mask, start: int) -> "torch.Tensor":
        import torch

        texts = [self.tok.decode(seq[start:][m[start:]].tolist(), skip_special_tokens=True) for seq, m in zip(seqs, mask)]
        return torch.tensor(self.rm.score([prompt] * len(texts), texts), dtype=torch.float32)

    def loss(self, model, prompts_ids: list[list[int]], prompts: list[str], seed: int):
        import torch

        losses = []
        for j, (ids, prompt) in enumerate(zip(prompts_ids, prompts)):
            seqs, mask = self.sample(model, ids, seed + j)
            logp = sequence_logps(model, seqs, mask)
            with torch.no_grad():
                penalised = self.rewards(prompt, seqs, mask, len(ids)) - self.beta * (logp.detach().float().cpu() - self._ref_logps(model, seqs, mask))
                baseline = (penalised.sum() - penalised) / (self.k - 1)  # the mean of the other k-1 samples
                advantage = (penalised - baseline).to(logp.device)
            losses.append(-(advantage * logp).mean())
        return torch.stack(losses).mean()

    def evaluate(self, model, prompts_ids, prompts, seed: int) -> dict:
        import torch

        rewards, kls = [], []
        with torch.no_grad():
            for j, (ids, prompt) in enumerate(zip(prompts_ids, prompts)):
                seqs, mask = self.sample(model, ids, seed + 1_000_003 * (j + 1))
                rewards.append(self.rewards(prompt, seqs, mask, len(ids)))
                kls.append(sequence_logps(model, seqs, mask).float().cpu() - self._ref_logps(model, seqs, mask))
        reward, kl = torch.cat(rewards), torch.cat(kls)
        return {"val_loss": float(-(reward - self.beta * kl).mean()), "val_reward": float(reward.mean()), "val_kl": float(kl.mean())}

    def _ref_logps(self, model, seqs, mask):
        import torch

        with torch.no_grad():
            if self.reference is not None:
                return sequence_logps(self.reference.to(seqs.device), seqs, mask).float().cpu()
            with model.disable_adapter():  # LoRA: the base weights are the reference
                return sequence_logps(model, seqs, mask).float().cpu()


def sequence_logps(model, seqs, mask):
    """Summed log-probability of the tokens where `mask` is true (each given the tokens before it)."""
    import torch

    attention = mask.clone()
    attention[:, :int(mask.float().argmax(1).min())] = True  # the prompt (every row shares it), then the completion through EOS
    logits = model(input_ids=seqs, attention_mask=attention.long()).logits[:, :-1].float()
    logp = torch.log_softmax(logits, -1).gather(-1, seqs[:, 1:].unsqueeze(-1)).squeeze(-1)
    return (logp * mask[:, 1:]).sum(-1)

