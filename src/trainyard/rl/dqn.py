"""DQN: epsilon-greedy collection into a replay buffer, Huber-loss updates against a target network.

One `iterate()` takes `train_freq` vector steps (uniformly random actions for the first `learning_starts` steps,
then epsilon-greedy, epsilon falling linearly over the first `exploration_fraction` of the timesteps), then, once
`learning_starts` steps are in the buffer, `gradient_steps` updates on uniform minibatches (`qupdate.py`: NumPy
rings, gradients written out). The target of an update is r + gamma * Q_target(s', a*) with a* = argmax Q_online(s') (double
DQN; plain DQN takes the target network's own maximum); episodes cut by a time limit are not terminal. The
target network is copied (or Polyak-averaged with tau < 1) every `target_update_interval` steps.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from trainyard.rl.agent import Agent
from trainyard.rl.nets import QNetwork
from trainyard.rl.qupdate import QUpdate, ReplayBuffer


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
        self.updater = QUpdate(self.q, self.opt, cfg.activation, cfg.max_grad_norm, cfg.batch_size)
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
        cfg, n = self.cfg, self.cfg.n_envs
        obs = self.obs_norm(self.obs, update=True)
        actions = self.rng.integers(0, self.info.n_actions, n)  # uniformly random: the warm-up's, and exploration's
        if self.steps >= cfg.learning_starts:  # before it (the warm-up) every action is random, as SB3's
            explore = self.rng.random(n) < self.epsilon()
            if not explore.all():
                with torch.inference_mode():
                    greedy = self.q(torch.from_numpy(obs)).argmax(-1).numpy()
                actions = np.where(explore, actions, greedy)
        next_obs, reward, terminated, truncated, info = self.vec.step(self.to_env(actions))
        next_flat = self._flat(next_obs)
        ended = np.flatnonzero(terminated | truncated)
        real_next = next_flat.copy() if len(ended) else next_flat
        for i in ended:
            real_next[i] = np.asarray(info["final_obs"][i], dtype=np.float32).ravel()
        self.buffer.add(self.obs, real_next, actions, np.asarray(reward, np.float32), terminated.astype(np.float32))
        self.obs = next_flat
        self.steps += n
        self.calls += 1
        if self.calls % max(cfg.target_update_interval // n, 1) == 0:
            self._update_target()

    @torch.no_grad()
    def _update_target(self) -> None:
        for t, s in zip(self.target.parameters(), self.q.parameters()):
            if self.cfg.tau == 1.0:
                t.copy_(s)
            else:
                t.mul_(1.0 - self.cfg.tau).add_(s, alpha=self.cfg.tau)

    def _train(self, n_updates: int) -> dict:
        """`n_updates` updates on minibatches drawn together; with plain targets (the target network fixed throughout)
        every minibatch's target is computed in one forward pass before the first update."""
        cfg, size = self.cfg, self.cfg.batch_size
        lr = self._set_lr()
        b = self.buffer.sample(self.rng, n_updates, size)
        obs = torch.from_numpy(self.obs_norm(b["obs"].reshape(n_updates * size, -1))).view(n_updates, size, -1)
        nxt = torch.from_numpy(self.obs_norm(b["next_obs"].reshape(n_updates * size, -1))).view(n_updates, size, -1)
        actions = torch.from_numpy(b["actions"])
        rewards, alive = torch.from_numpy(b["rewards"]), 1.0 - torch.from_numpy(b["terminals"])
        targets = torch.empty(n_updates, size)
        current = torch.empty(n_updates, size)  # each update's values before it: the loss and the checks come from them
        if not cfg.double:
            with torch.inference_mode():
                next_q = self.target(nxt.view(n_updates * size, -1)).max(-1).values.view(n_updates, size)
            torch.addcmul(rewards, alive, next_q, value=cfg.gamma, out=targets)
        for k in range(n_updates):
            if cfg.double:
                with torch.inference_mode():
                    best = self.q(nxt[k]).argmax(-1, keepdim=True)
                    next_q = self.target(nxt[k]).gather(1, best).squeeze(1)
                torch.addcmul(rewards[k], alive[k], next_q, value=cfg.gamma, out=targets[k])
            self.updater.step(obs[k], actions[k], targets[k], current[k])
            self.updates += 1
        losses = F.smooth_l1_loss(current, targets, reduction="none").mean(1)
        # checked once per iteration: a NaN or an exploding estimate anywhere in it shows in the sum or the peak (the
        # plan then rolls back to the last checkpoint, so the updates after it are discarded with it)
        self._check(losses.sum(), current.abs().amax().reshape(1))
        return {"loss": float(losses.mean()), "q_mean": float(current.mean()), "lr": lr}
