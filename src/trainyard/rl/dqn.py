"""DQN: epsilon-greedy collection into a replay buffer, Huber-loss updates against a target network.

One `iterate()` takes `train_freq` vector steps (epsilon falls linearly over the first `exploration_fraction`
of the timesteps), then, once `learning_starts` steps are in the buffer, `gradient_steps` updates on uniform
minibatches. The target of an update is r + gamma * Q_target(s', a*) with a* = argmax Q_online(s') (double
DQN; plain DQN takes the target network's own maximum); episodes cut by a time limit are not terminal. The
target network is copied (or Polyak-averaged with tau < 1) every `target_update_interval` steps.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from trainyard.rl.agent import Agent
from trainyard.rl.nets import QNetwork

BUFFER_FIELDS = ("obs", "next_obs", "actions", "rewards", "terminals")


class ReplayBuffer:
    def __init__(self, size: int, obs_dim: int):
        self.size, self.pos, self.full = size, 0, False
        self.data = {"obs": np.zeros((size, obs_dim), np.float32), "next_obs": np.zeros((size, obs_dim), np.float32),
                     "actions": np.zeros(size, np.int64), "rewards": np.zeros(size, np.float32), "terminals": np.zeros(size, np.float32)}

    def __len__(self) -> int:
        return self.size if self.full else self.pos

    def add(self, obs, next_obs, actions, rewards, terminals) -> None:
        for i in range(len(actions)):
            for key, value in zip(BUFFER_FIELDS, (obs[i], next_obs[i], actions[i], rewards[i], terminals[i])):
                self.data[key][self.pos] = value
            self.pos = (self.pos + 1) % self.size
            self.full = self.full or self.pos == 0

    def sample(self, rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
        idx = rng.integers(0, len(self), n)
        return {k: v[idx] for k, v in self.data.items()}

    def arrays(self) -> dict[str, np.ndarray]:
        n = len(self)
        return {f"buffer_{k}": v[:n] for k, v in self.data.items()}

    def load(self, arrays: dict[str, np.ndarray], pos: int, full: bool) -> None:
        for key in BUFFER_FIELDS:
            saved = arrays[f"buffer_{key}"]
            self.data[key][:len(saved)] = saved
        self.pos, self.full = pos, full


class DQN(Agent):
    algo = "dqn"

    def __init__(self, cfg, info, total_timesteps: int, seed: int):
        super().__init__(cfg, info, total_timesteps, seed)
        self.q = QNetwork(info.obs_dim, info.n_actions, cfg.hidden, cfg.activation)
        self.target = QNetwork(info.obs_dim, info.n_actions, cfg.hidden, cfg.activation)
        self.target.load_state_dict(self.q.state_dict())
        self.target.requires_grad_(False)
        self.opt = torch.optim.Adam(self.q.parameters(), lr=cfg.lr, fused=True)  # one kernel per step: ~0.3 ms less per update
        self.buffer = ReplayBuffer(cfg.buffer_size, info.obs_dim)
        self.calls = 0  # vector steps (the target update counts them)
        self.updates = 0

    def modules(self):
        return {"q": self.q, "target": self.target}

    def optimizer(self):
        return self.opt

    def extra_state(self):
        return {"buffer_pos": self.buffer.pos, "buffer_full": self.buffer.full, "calls": self.calls, "updates": self.updates}, self.buffer.arrays()

    def load_extra(self, state, arrays):
        self.buffer.load(arrays, state["buffer_pos"], state["buffer_full"])
        self.calls, self.updates = state["calls"], state["updates"]

    def epsilon(self) -> float:
        cfg = self.cfg
        progress = self.steps / max(self.total, 1)
        if progress >= cfg.exploration_fraction:
            return cfg.exploration_final_eps
        return cfg.exploration_initial_eps + (cfg.exploration_final_eps - cfg.exploration_initial_eps) * progress / cfg.exploration_fraction

    def iterate(self) -> dict:
        cfg = self.cfg
        collected = 0
        for _ in range(cfg.train_freq):
            self._step()
            collected += cfg.n_envs
        metrics = {"epsilon": self.epsilon()}
        if self.steps > cfg.learning_starts and len(self.buffer) >= 1:
            n_updates = cfg.gradient_steps if cfg.gradient_steps > 0 else collected
            metrics.update(self._train(n_updates))
        self._collect_episodes()
        self.iterations += 1
        return {**metrics, **self.episode_stats()}

    def _step(self) -> None:
        cfg = self.cfg
        obs = self.obs_norm(self.obs, update=True)
        with torch.no_grad():
            greedy = self.q(torch.from_numpy(obs)).argmax(-1).numpy()
        explore = self.rng.random(cfg.n_envs) < self.epsilon()
        actions = np.where(explore, self.rng.integers(0, self.info.n_actions, cfg.n_envs), greedy)
        next_obs, reward, terminated, truncated, info = self.vec.step(self.to_env(actions))
        next_flat = self._flat(next_obs)
        real_next = next_flat.copy()
        for i in np.flatnonzero(terminated | truncated):
            real_next[i] = np.asarray(info["final_obs"][i], dtype=np.float32).ravel()
        self.buffer.add(self.obs, real_next, actions, np.asarray(reward, np.float32), terminated.astype(np.float32))
        self.obs = next_flat
        self.steps += cfg.n_envs
        self.calls += 1
        if self.calls % max(cfg.target_update_interval // cfg.n_envs, 1) == 0:
            self._update_target()

    def _update_target(self) -> None:
        with torch.no_grad():
            for t, s in zip(self.target.parameters(), self.q.parameters()):
                t.mul_(1.0 - self.cfg.tau).add_(s, alpha=self.cfg.tau)

    def _train(self, n_updates: int) -> dict:
        cfg = self.cfg
        lr = self._set_lr()
        losses, qs, peak = torch.zeros(()), torch.zeros(()), torch.zeros(())  # summed as tensors: no sync per update
        for _ in range(n_updates):
            b = self.buffer.sample(self.rng, cfg.batch_size)
            obs = torch.from_numpy(self.obs_norm(b["obs"]))
            nxt = torch.from_numpy(self.obs_norm(b["next_obs"]))
            with torch.no_grad():
                target_q = self.target(nxt)
                if cfg.double:
                    best = self.q(nxt).argmax(-1, keepdim=True)
                    next_q = target_q.gather(1, best).squeeze(1)
                else:
                    next_q = target_q.max(-1).values
                target = torch.from_numpy(b["rewards"]) + (1.0 - torch.from_numpy(b["terminals"])) * cfg.gamma * next_q
            current = self.q(obs).gather(1, torch.from_numpy(b["actions"]).unsqueeze(1)).squeeze(1)
            loss = F.smooth_l1_loss(current, target)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.q.parameters(), cfg.max_grad_norm, foreach=True)
            self.opt.step()
            current = current.detach()
            losses += loss.detach()
            qs += current.mean()
            peak = torch.maximum(peak, current.abs().max())
            self.updates += 1
        # checked once per iteration: a NaN or an exploding estimate anywhere in it shows in the sum or the peak (the
        # plan then rolls back to the last checkpoint, so the updates after it are discarded with it)
        self._check(losses, peak.reshape(1))
        return {"loss": float(losses) / max(n_updates, 1), "q_mean": float(qs) / max(n_updates, 1), "lr": lr}
