"""trainyard's DQN and SB3's in lock-step: the same initial weights and the same random draws, so any difference
in what the two collect or learn shows as the first step where they part. A diagnostic, not a benchmark.

    PYTHONPATH=/tmp/peer-sb3-pkgs python benchmarks/rl/dqn_lockstep.py sb3 Acrobot-v1 20000 SEED /tmp/ref.npz [fused]
    PYTHONPATH=src:/tmp/peer-sb3-pkgs python benchmarks/rl/dqn_lockstep.py ty Acrobot-v1 20000 SEED /tmp/ref.npz

The first run trains SB3's DQN (RL Zoo hyperparameters) and saves every action it took and its Q-network's
weights after chosen steps. The second makes the same SB3 model (to get its initial weights and seeded
generators, untrained), copies the weights into trainyard's DQN and replaces trainyard's generator with one that
hands out SB3's draws in SB3's order (the exploration coin and action from NumPy's global generator and the
action space's; each minibatch's indices and environment indices from the global generator), then trains
trainyard's DQN and compares: the first step whose action differs, how far the weights are at each saved step,
which replay rows differ, and at how many steps the two exploration rates would decide differently. During a
warm-up (`learning_starts`, CartPole's first 1,000 steps) both draw a random action without a coin.

With `fused`, the SB3 reference uses Adam's fused kernel, as trainyard does: the runs then stay together longer,
and stock SB3 against fused SB3 parts as early as stock SB3 against trainyard. What it found: docs/rl.md
("Return, DQN").
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from dqn_greedy_curve import zoo_dqn

CHECKS = (4, 100, 500, 1000, 1024, 1280, 2000, 3000, 5000, 10000, 20000, 50000)  # steps after which the weights are compared


def flat_weights(net: torch.nn.Module) -> np.ndarray:
    return torch.cat([p.detach().reshape(-1) for p in net.parameters()]).numpy().copy()


def reference(env_id: str, steps: int, seed: int, path: str, fused: bool) -> None:
    from stable_baselines3.common.callbacks import BaseCallback

    model = zoo_dqn(env_id, seed, fused)
    actions, rewards, weights = [], [], {}

    class Record(BaseCallback):
        def _on_step(self) -> bool:
            actions.append(int(self.locals["actions"][0]))
            rewards.append(float(self.locals["rewards"][0]))
            return True

    train = model.train

    def train_and_save(gradient_steps, batch_size=100):
        train(gradient_steps=gradient_steps, batch_size=batch_size)
        if model.num_timesteps in CHECKS:
            weights[f"w{model.num_timesteps}"] = flat_weights(model.q_net)

    model.train = train_and_save
    model.learn(steps, callback=Record())
    rb, n = model.replay_buffer, model.replay_buffer.size()
    buffer = {"b_obs": rb.observations[:n, 0], "b_next_obs": rb.next_observations[:n, 0], "b_actions": rb.actions[:n, 0, 0],
              "b_rewards": rb.rewards[:n, 0], "b_terminals": rb.dones[:n, 0] * (1 - rb.timeouts[:n, 0])}
    np.savez(path, actions=np.array(actions), rewards=np.array(rewards), **weights, **buffer)


class SB3Draws:
    """Stands in for trainyard's `agent.rng`, giving SB3's draws in SB3's order (see the module docstring)."""

    def __init__(self, model, agent):
        self.model, self.agent, self.coin, self.disagree = model, agent, 1.0, 0
        self.first_disagreement = None
        self.bit_generator = np.random.default_rng(0).bit_generator  # only for trainyard's checkpoints, never drawn from

    def sb3_rate(self) -> float:
        steps = self.agent.steps  # SB3's rate for the action at step t was set after step t - 1 (0.0 before any step)
        return 0.0 if steps == 0 else float(self.model.exploration_schedule(1.0 - steps / self.agent.total))

    def integers(self, low, high, size):
        if isinstance(size, tuple):  # an iteration's minibatch indices: SB3 draws them one minibatch at a time
            rows = []
            for _ in range(size[0]):
                rows.append(np.random.randint(low, high, size=size[1]))
                np.random.randint(0, high=1, size=(size[1],))  # SB3's environment index of each transition
            return np.stack(rows)
        if self.agent.steps < self.agent.cfg.learning_starts:  # the warm-up: a uniformly random action, no coin
            return np.array([int(self.model.action_space.sample())])
        # an exploration action: SB3 tosses the coin first and samples an action only when it explores
        self.coin = np.random.rand()
        sb3_explores = self.coin < self.sb3_rate()
        if sb3_explores != (self.coin < self.agent.epsilon()):
            self.disagree += 1
            self.first_disagreement = self.first_disagreement if self.first_disagreement is not None else self.agent.steps
        if sb3_explores:
            return np.array([int(self.model.action_space.sample())])
        with torch.inference_mode():  # not exploring: the greedy action, whatever trainyard's own rate decides
            return self.agent.q(torch.from_numpy(self.agent.obs)).argmax(-1).numpy()

    def random(self, n):
        return np.array([self.coin if self.coin < self.sb3_rate() else 1.0])


def lockstep(env_id: str, steps: int, seed: int, path: str) -> dict:
    from trainyard.rl.config import RLSettings
    from trainyard.rl.plan import RLPlan

    ref = np.load(path)
    out = {"first_action_difference": None, "weights": {}}
    with tempfile.TemporaryDirectory() as tmp:
        plan = RLPlan(RLSettings(env=env_id, algo="dqn", timesteps=steps, seed=seed, checkpoint_every=10**12), Path(tmp))
        agent = plan.prepare()
        model = zoo_dqn(env_id, seed)  # seeds NumPy's global generator and the action space as SB3's run did
        for net in (agent.q, agent.target):
            for ours, theirs in zip(net.parameters(), model.q_net.parameters()):
                ours.data.copy_(theirs.data)
        agent.rng = draws = SB3Draws(model, agent)
        taken = []
        to_env = agent.to_env

        def record(actions):
            taken.append(int(actions[0]))
            return to_env(actions)

        agent.to_env = record

        def progress(kind, info):
            if agent.steps in CHECKS and f"w{agent.steps}" in ref:
                out["weights"][agent.steps] = float(np.abs(flat_weights(agent.q) - ref[f"w{agent.steps}"]).max())

        plan.fit(progress=progress)
        n = len(agent.buffer)
        for key in ("obs", "next_obs", "actions", "rewards", "terminals"):
            if f"b_{key}" in ref:
                ours, theirs = agent.buffer.data[key][:n], ref[f"b_{key}"][:n]
                rows = np.flatnonzero((ours != theirs).reshape(n, -1).any(1))
                out[f"buffer_{key}_rows_differing"] = rows[:10].tolist() + ([f"... {len(rows)} in all"] if len(rows) > 10 else [])
    ref_actions = ref["actions"]
    n = min(len(ref_actions), len(taken))
    differ = np.flatnonzero(np.array(taken[:n]) != ref_actions[:n])
    out.update(first_action_difference=int(differ[0]) if len(differ) else None, compared=n, differing=int(len(differ)),
               rate_disagreements=draws.disagree, first_rate_disagreement=draws.first_disagreement)
    return out


def main() -> None:
    lib, env_id, steps, seed, path = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    torch.set_num_threads(1)
    if lib == "sb3":
        reference(env_id, steps, seed, path, fused="fused" in sys.argv[6:])
    else:
        print(json.dumps(lockstep(env_id, steps, seed, path)))


if __name__ == "__main__":
    main()
