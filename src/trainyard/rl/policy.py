"""`RLPolicy`: a trained policy as it is saved and served, with the spaces it was trained on.

It needs torch and numpy only (no Gymnasium): the actor network (PPO) or the Q-network (DQN), the frozen
observation statistics, and the observation and action spaces as JSON. `act` maps a batch of raw observations
to the environment's actions: the deterministic one (the mode, the mean, the greedy action) or a sample.
"""

from __future__ import annotations

import numpy as np
import torch

from trainyard.rl.nets import mlp
from trainyard.rl.normalize import normalize
from trainyard.rl.spaces import env_action

OBS_CLIP = 10.0


class RLPolicy:
    def __init__(self, algo: str, spaces: dict, net: dict, tensors: dict[str, torch.Tensor], meta: dict | None = None):
        self.algo, self.spaces, self.net_spec, self.meta = algo, spaces, net, meta or {}
        discrete = spaces["action_kind"] == "discrete"
        n_out = spaces["n_actions"] if discrete else int(np.prod(spaces["action_shape"]))
        obs_dim = int(np.prod(spaces["obs_shape"]))
        self.net = mlp(obs_dim, tuple(net["hidden"]), n_out, net["activation"], 1.0)
        prefix = "pi." if algo == "ppo" else "q."
        self.net.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
        self.net.eval()
        self.log_std = tensors.get("log_std")
        self.obs_mean = tensors["obs_mean"].numpy() if net.get("normalize_obs") else None
        self.obs_var = tensors["obs_var"].numpy() if net.get("normalize_obs") else None
        self.discrete = discrete

    @property
    def tensors(self) -> dict[str, torch.Tensor]:
        prefix = "pi." if self.algo == "ppo" else "q."
        out = {prefix + k: v.detach().clone().contiguous() for k, v in self.net.state_dict().items()}
        if self.log_std is not None:
            out["log_std"] = self.log_std.detach().clone().contiguous()
        if self.obs_mean is not None:
            out["obs_mean"], out["obs_var"] = torch.from_numpy(self.obs_mean.copy()), torch.from_numpy(self.obs_var.copy())
        return out

    def act(self, obs: np.ndarray, deterministic: bool = True, generator: torch.Generator | None = None) -> np.ndarray:
        """Environment actions for a batch of raw observations (n, obs_dim)."""
        x = np.asarray(obs, dtype=np.float32).reshape(len(obs), -1)
        if self.obs_mean is not None:
            x = normalize(x, self.obs_mean, self.obs_var, OBS_CLIP)
        with torch.no_grad():
            out = self.net(torch.from_numpy(x))
            if self.discrete:
                if deterministic:
                    actions = out.argmax(-1)
                elif self.algo == "ppo":
                    actions = torch.multinomial(torch.softmax(out, -1), 1, generator=generator).squeeze(-1)
                else:  # DQN: epsilon-greedy with the final exploration rate
                    eps = float(self.meta.get("hyperparameters", {}).get("exploration_final_eps", 0.05))
                    explore = torch.rand(len(x), generator=generator) < eps
                    actions = torch.where(explore, torch.randint(0, out.shape[-1], (len(x),), generator=generator), out.argmax(-1))
                return actions.numpy().astype(np.int64) + int(self.spaces.get("action_start") or 0)
            if not deterministic:
                out = out + self._noise(torch.from_numpy(x), out.shape, generator)
        return env_action(out.numpy(), self.spaces["action_low"], self.spaces["action_high"], self.net_spec.get("squash", "clip"))

    def _noise(self, x: torch.Tensor, shape: torch.Size, generator: torch.Generator | None) -> torch.Tensor:
        """Exploration noise for a sampled continuous action: independent Gaussian, or gSDE's (the last hidden
        features times a noise matrix drawn for each observation)."""
        std = self.log_std.exp()
        if not self.net_spec.get("sde"):
            return std * torch.randn(shape, generator=generator)
        features = self.net[:-1](x)
        matrices = torch.randn((len(x), *std.shape), generator=generator) * std
        return torch.bmm(features.unsqueeze(1), matrices).squeeze(1)

    def predict(self, obs: np.ndarray) -> np.ndarray:
        return self.act(obs, deterministic=True)


def policy_from_agent(agent, info, hyperparameters: dict, meta: dict | None = None,
                      tensors: dict[str, torch.Tensor] | None = None) -> RLPolicy:
    """The acting part of a PPO or DQN agent (its actor or Q-network, its observation statistics) as an `RLPolicy`;
    with `tensors` (an earlier `RLPolicy.tensors` of the same agent), that snapshot instead of the agent's current one."""
    algo = agent.algo
    normalize_obs = bool(hyperparameters.get("normalize_obs"))
    if tensors is None:
        state = agent.net.actor_state() if algo == "ppo" else agent.q.q.state_dict()
        prefix = "pi." if algo == "ppo" else "q."
        tensors = {prefix + k: v.detach().clone() for k, v in state.items()}
        if algo == "ppo" and not agent.net.discrete:
            tensors["log_std"] = agent.net.log_std.detach().clone()
        if normalize_obs:
            tensors["obs_mean"] = torch.from_numpy(agent.obs_norm.rms.mean.copy())
            tensors["obs_var"] = torch.from_numpy(agent.obs_norm.rms.var.copy())
    spec = {"hidden": list(hyperparameters["hidden"]), "activation": hyperparameters["activation"],
            "squash": hyperparameters.get("squash", "clip"), "normalize_obs": normalize_obs,
            "sde": bool(algo == "ppo" and not agent.net.discrete and agent.net.sde)}
    return RLPolicy(algo, info.to_dict(), spec, tensors, {**(meta or {}), "hyperparameters": hyperparameters})
