"""The best policy seen during training, chosen on validation episodes (`--keep-best`, the default).

A greedy policy can swing between solving a task and failing it from one update to the next (DQN on Acrobot at
20k steps: its greedy returns flip between about -80 and -500 from one probe to the next), so the network at the
last step is a coin toss. Every `every` environment steps, and at the end, the plan scores the current greedy
policy on `episodes` validation episodes (seeds from VALIDATION_SEED_BASE up: neither training's nor the held-out
evaluation's) and keeps a copy of its tensors when it scores at least as well as the best so far (a tie goes to
the later, longer-trained one). At the end the kept one is registered only if it beat the last step's network by more
than two standard errors of the difference (the episodes' spread over their count): the best of 20 noisy scores is
flattered by its noise, so a near-tie goes to the network trained longest (PPO on Acrobot: a kept earlier policy that
had scored a few points higher on 10 episodes did worse on the held-out ones). The held-out evaluation then measures
the registered policy on episodes the choice never saw.

    best = BestPolicy(every=2500, episodes=10)
    best.offer(step, score, policy.tensors, sd)  # True when this one is kept
    best.prefer_last()                           # at the end: register the last network rather than the kept one
    tensors, state = best.state()               # into the checkpoint ("best." tensors, JSON), so resume is exact
    best.load(tensors, state)
"""

from __future__ import annotations

import torch

PREFIX = "best."


class BestPolicy:
    def __init__(self, every: int, episodes: int):
        self.every, self.episodes = max(int(every), 1), int(episodes)
        self.score: float | None = None
        self.sd = 0.0  # the kept one's spread over its episodes
        self.step: int | None = None
        self.tensors: dict[str, torch.Tensor] | None = None
        self.history: list[list[float]] = []  # [step, validation return, its sd over the episodes] of every scoring, in order

    def due(self, step: int) -> bool:
        """Whether the policy at `step` (the end of an iteration) is to be scored: the first iteration end at or past each
        multiple of `every`, which a run resumed from a checkpoint reaches at the same steps as one never interrupted."""
        last = int(self.history[-1][0]) if self.history else 0
        return step // self.every > last // self.every

    def scored(self, step: int) -> bool:
        return bool(self.history) and int(self.history[-1][0]) == step

    def offer(self, step: int, score: float, tensors: dict[str, torch.Tensor], sd: float = 0.0) -> bool:
        self.history.append([int(step), float(score), float(sd)])
        if self.score is not None and score < self.score:
            return False
        self.score, self.sd, self.step, self.tensors = float(score), float(sd), int(step), tensors
        return True

    def prefer_last(self) -> bool:
        """Whether the last scored network (the agent's current one, at the end of training) is to be registered rather
        than the kept one: it is, unless the kept one scored higher by more than two standard errors of the difference."""
        if self.step is None or int(self.history[-1][0]) == self.step:  # nothing scored yet, or the kept one is the last
            return True
        _, last_score, last_sd = self.history[-1]
        margin = 2.0 * ((self.sd ** 2 + last_sd ** 2) / max(self.episodes, 1)) ** 0.5
        return self.score - last_score <= margin

    def chosen(self) -> tuple[int | None, float | None]:
        """(step, validation return) of the policy registered at the end."""
        if self.prefer_last() and self.history:
            return int(self.history[-1][0]), self.history[-1][1]
        return self.step, self.score

    def sentence(self, final_step: int) -> str:
        """Which policy is registered and why, as the run's event and the CLI say it."""
        step, score = self.chosen()
        if step != final_step:
            which = f"step {step:,}'s policy (the last step's: {self.history[-1][1]:.2f})"
        elif self.step != step:
            which = f"the last step's policy (step {self.step:,}'s {self.score:.2f} was within two standard errors)"
        else:
            which = "the last step's policy, the best"
        return f"Kept {which}: validation return {score:.2f} over {self.episodes} episodes, of {len(self.history)} scorings"

    def state(self) -> tuple[dict[str, torch.Tensor], dict]:
        tensors = {PREFIX + k: v.contiguous() for k, v in (self.tensors or {}).items()}
        return tensors, {"score": self.score, "sd": self.sd, "step": self.step, "history": self.history}

    def load(self, tensors: dict[str, torch.Tensor], state: dict | None) -> None:
        state = state or {}
        self.score, self.step, self.history = state.get("score"), state.get("step"), [list(h) for h in state.get("history", [])]
        self.sd = state.get("sd", 0.0)
        kept = {k[len(PREFIX):]: v for k, v in tensors.items() if k.startswith(PREFIX)}
        self.tensors = kept or None

    def report(self, final_step: int) -> dict:
        """What the artifact's meta and the run's events say about the choice."""
        step, score = self.chosen()
        return {"every": self.every, "episodes": self.episodes, "chosen_step": step, "chosen_validation_return": score,
                "best_step": self.step, "best_validation_return": self.score, "final_step": final_step, "history": self.history,
                "summary": self.sentence(final_step) if self.history else None}
