"""PPO: rollouts from a vector of environments, generalised advantage estimation, a clipped surrogate objective.

One `iterate()` collects `n_steps` steps from each of the `n_envs` environments, computes advantages with
GAE(lambda) (episodes cut by a time limit are bootstrapped with the value of their final observation), then
takes `n_epochs` passes of minibatch Adam steps on: the clipped policy loss, the value loss (optionally
clipped around the rollout's estimates), minus an entropy bonus. Advantages are normalised per minibatch;
observations and rewards optionally by running statistics.
"""

from __future__ import annotations

import numpy as np
import torch

from trainyard.rl.agent import Agent
from trainyard.rl.nets import ActorCritic
from trainyard.rl.normalize import RewardScaler


class PPO(Agent):
    algo = "ppo"

    def __init__(self, cfg, info, total_timesteps: int, seed: int):
        super().__init__(cfg, info, total_timesteps, seed)
        self.net = ActorCritic(info.obs_dim, info.action_dim, info.action_kind == "discrete", cfg.hidden, cfg.activation,
                               cfg.log_std_init, sde=cfg.use_sde)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=cfg.lr, eps=1e-5, fused=True)
        self.reward_scale = RewardScaler(cfg.n_envs, cfg.gamma, cfg.normalize_reward)
        # gSDE: one noise matrix per environment, redrawn every `sde_sample_freq` steps (counted across rollouts, so
        # the matrix in use and its age are part of the state), or at each rollout's start when sde_sample_freq <= 0
        self.sde_noise = self.net.sample_noise(cfg.n_envs) if self.net.sde else None
        self.sde_age = 0

    def modules(self):
        return {"policy": self.net}

    def optimizer(self):
        return self.opt

    def extra_state(self):
        if self.sde_noise is None:
            return {"reward_scale": self.reward_scale.state()}, {}
        return {"reward_scale": self.reward_scale.state(), "sde_age": self.sde_age}, {"sde_noise": self.sde_noise.numpy()}

    def load_extra(self, state, arrays):
        self.reward_scale.load(state["reward_scale"])
        if self.sde_noise is not None:
            self.sde_noise, self.sde_age = torch.from_numpy(arrays["sde_noise"].copy()), state["sde_age"]

    def _exploration_noise(self, t: int) -> torch.Tensor | None:
        """gSDE's noise matrices for rollout step `t`, redrawn when due (None without gSDE)."""
        if self.sde_noise is None:
            return None
        freq = self.cfg.sde_sample_freq
        if (freq > 0 and self.sde_age >= freq) or (freq <= 0 and t == 0):
            self.sde_noise, self.sde_age = self.net.sample_noise(self.cfg.n_envs), 0
        self.sde_age += 1
        return self.sde_noise

    def iterate(self) -> dict:
        batch = self._rollout()
        metrics = self._update(batch)
        self.iterations += 1
        return {**metrics, **self.episode_stats()}

    def _rollout(self) -> dict:
        cfg, n, T = self.cfg, self.cfg.n_envs, self.cfg.n_steps
        obs_buf = np.zeros((T, n, self.info.obs_dim), dtype=np.float32)
        act_buf = np.zeros((T, n) + ((self.info.action_dim,) if not self.net.discrete else ()), dtype=np.int64 if self.net.discrete else np.float32)
        logp_buf, val_buf, rew_buf, done_buf = (np.zeros((T, n), dtype=np.float32) for _ in range(4))
        for t in range(T):
            obs = self.obs_norm(self.obs, update=True)
            with torch.no_grad():
                x = torch.from_numpy(obs)
                action, logp, value = self.net.sample(x, self._exploration_noise(t))
                logp_buf[t] = logp.numpy()
                val_buf[t] = value.numpy()
            actions = action.numpy()
            obs_buf[t], act_buf[t] = obs, actions
            next_obs, reward, terminated, truncated, info = self.vec.step(self.to_env(actions))
            done = terminated | truncated
            reward = self.reward_scale(reward, done)
            cut = truncated & ~terminated
            if cut.any():  # a time limit is not the end of the task: bootstrap with the final observation's value
                finals = np.stack([np.asarray(info["final_obs"][i], dtype=np.float32).ravel() for i in np.flatnonzero(cut)])
                with torch.no_grad():
                    reward[cut] += cfg.gamma * self.net.value(torch.from_numpy(self.obs_norm(finals))).numpy()
            rew_buf[t], done_buf[t] = reward, done
            self.obs = self._flat(next_obs)
            self.steps += n
        self._collect_episodes()
        with torch.no_grad():
            last = self.net.value(torch.from_numpy(self.obs_norm(self.obs))).numpy()
        adv = _gae(rew_buf, val_buf, done_buf, last, cfg.gamma, cfg.gae_lambda)
        return {"obs": obs_buf, "actions": act_buf, "logp": logp_buf, "values": val_buf, "adv": adv, "returns": adv + val_buf}

    def _update(self, batch: dict) -> dict:
        cfg = self.cfg
        flat = {k: torch.from_numpy(v.reshape(-1, *v.shape[2:])) for k, v in batch.items()}
        size = flat["adv"].shape[0]
        lr = self._set_lr()
        progress = min(self.steps / max(self.total, 1), 1.0)
        clip = cfg.clip_range * ((1.0 - progress) if cfg.clip_schedule == "linear" else 1.0)
        sums = {"policy_loss": 0.0, "value_loss": 0.0, "entropy": 0.0, "clip_fraction": 0.0}
        count = 0
        for _ in range(cfg.n_epochs):
            order = torch.from_numpy(self.rng.permutation(size))
            for start in range(0, size, cfg.batch_size):
                idx = order[start:start + cfg.batch_size]
                parts = self._losses({k: v[idx] for k, v in flat.items()}, clip)
                loss = parts["policy_loss"] + cfg.vf_coef * parts["value_loss"] - cfg.ent_coef * parts["entropy"]
                self._check(loss, parts["value"])
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.net.parameters(), cfg.max_grad_norm, foreach=True)
                self.opt.step()
                for key in sums:
                    sums[key] += float(parts[key].detach())
                count += 1
        explained = 1.0 - float(np.var(batch["returns"] - batch["values"]) / max(np.var(batch["returns"]), 1e-12))
        return {**{k: v / max(count, 1) for k, v in sums.items()}, "explained_variance": explained, "lr": lr, "clip_range": clip}

    def _losses(self, mb: dict, clip: float) -> dict:
        cfg = self.cfg
        logp, entropy, value = self.net.evaluate(mb["obs"], mb["actions"])
        adv = mb["adv"]
        if cfg.normalize_advantage and adv.numel() > 1:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        ratio = torch.exp(logp - mb["logp"])
        policy_loss = -torch.min(adv * ratio, adv * ratio.clamp(1.0 - clip, 1.0 + clip)).mean()
        if cfg.clip_value is not None:
            clipped = mb["values"] + (value - mb["values"]).clamp(-cfg.clip_value, cfg.clip_value)
            value_loss = torch.max((value - mb["returns"]) ** 2, (clipped - mb["returns"]) ** 2).mean()
        else:
            value_loss = ((value - mb["returns"]) ** 2).mean()
        with torch.no_grad():
            clip_fraction = ((ratio - 1.0).abs() > clip).float().mean()
        return {"policy_loss": policy_loss, "value_loss": value_loss, "entropy": entropy.mean(),
                "clip_fraction": clip_fraction, "value": value.detach()}


def _gae(rewards, values, dones, last_value, gamma: float, lam: float) -> np.ndarray:
    """Generalised advantage estimates; `dones[t]` ends the episode after step t (the next observation is a reset)."""
    adv = np.zeros_like(rewards)
    running = np.zeros_like(last_value)
    next_value = last_value
    for t in range(rewards.shape[0] - 1, -1, -1):
        live = 1.0 - dones[t]
        delta = rewards[t] + gamma * next_value * live - values[t]
        running = delta + gamma * lam * live * running
        adv[t] = running
        next_value = values[t]
    return adv
