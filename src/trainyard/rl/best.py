"""The best policy seen during training, chosen on validation episodes (`--keep-best`, the default).

A greedy policy can swing between solving a task and failing it from one update to the next (DQN on Acrobot at
20k steps: its greedy returns flip between about -80 and -500 from one probe to the next), so the network at the
last step is a coin toss. Every `every` environment steps, and at the end, the plan scores the current greedy
policy on `episodes` validation episodes (seeds from VALIDATION_SEED_BASE up: neither training's nor the held-out
evaluation's) and keeps a copy of its tensors when it scores at least as well as the best so far (a tie goes to
the later, longer-trained one). The registered policy is the kept one; the held-out evaluation then measures it on
episodes the choice never saw.

    best = BestPolicy(every=2500, episodes=10)
    best.offer(step, score, policy.tensors)     # True when this one is kept
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
        self.step: int | None = None
        self.tensors: dict[str, torch.Tensor] | None = None
        self.history: list[list[float]] = []  # [step, validation return] of every scoring, in order

    def due(self, step: int) -> bool:
        """Whether the policy at `step` (the end of an iteration) is to be scored: the first iteration end at or past each
        multiple of `every`, which a run resumed from a checkpoint reaches at the same steps as one never interrupted."""
        last = int(self.history[-1][0]) if self.history else 0
        return step // self.every > last // self.every

    def scored(self, step: int) -> bool:
        return bool(self.history) and int(self.history[-1][0]) == step

    def offer(self, step: int, score: float, tensors: dict[str, torch.Tensor]) -> bool:
        self.history.append([int(step), float(score)])
        if self.score is not None and score < self.score:
            return False
        self.score, self.step, self.tensors = float(score), int(step), tensors
        return True

    def state(self) -> tuple[dict[str, torch.Tensor], dict]:
        tensors = {PREFIX + k: v.contiguous() for k, v in (self.tensors or {}).items()}
        return tensors, {"score": self.score, "step": self.step, "history": self.history}

    def load(self, tensors: dict[str, torch.Tensor], state: dict | None) -> None:
        state = state or {}
        self.score, self.step, self.history = state.get("score"), state.get("step"), [list(h) for h in state.get("history", [])]
        kept = {k[len(PREFIX):]: v for k, v in tensors.items() if k.startswith(PREFIX)}
        self.tensors = kept or None

    def report(self, final_step: int) -> dict:
        """What the artifact's meta and the run's events say about the choice."""
        return {"every": self.every, "episodes": self.episodes, "chosen_step": self.step, "chosen_validation_return": self.score,
                "final_step": final_step, "history": self.history}
