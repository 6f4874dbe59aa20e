"""Small MLPs for the policies: an actor-critic (separate policy and value networks) and a Q-network."""

from __future__ import annotations

import math

import torch
from torch import nn

ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU}
LOG_2PI = math.log(2 * math.pi)


def mlp(n_in: int, hidden: tuple[int, ...], n_out: int, activation: str, out_gain: float) -> nn.Sequential:
    """Linear layers with orthogonal initialisation (gain sqrt(2) inside, `out_gain` on the last), zero biases."""
    layers, size = [], n_in
    for width in hidden:
        layers += [_orthogonal(nn.Linear(size, width), math.sqrt(2)), ACTIVATIONS[activation]()]
        size = width
    layers.append(_orthogonal(nn.Linear(size, n_out), out_gain))
    return nn.Sequential(*layers)


def _orthogonal(layer: nn.Linear, gain: float) -> nn.Linear:
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.zeros_(layer.bias)
    return layer


class ActorCritic(nn.Module):
    """pi: observation -> action logits (discrete) or Gaussian means (continuous, with a learned log-std); v: value."""

    def __init__(self, obs_dim: int, action_dim: int, discrete: bool, hidden: tuple[int, ...], activation: str, log_std_init: float = 0.0):
        super().__init__()
        self.discrete = discrete
        self.pi = mlp(obs_dim, hidden, action_dim, activation, 0.01)
        self.v = mlp(obs_dim, hidden, 1, activation, 1.0)
        if not discrete:
            self.log_std = nn.Parameter(torch.full((action_dim,), float(log_std_init)))

    def sample(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(action, log-probability) sampled from the policy at `obs` (the distributions written out: cheaper
        than torch.distributions on the small batches of a rollout)."""
        out = self.pi(obs)
        if self.discrete:
            logp_all = torch.log_softmax(out, -1)
            action = torch.multinomial(logp_all.exp(), 1).squeeze(-1)
            return action, logp_all.gather(-1, action.unsqueeze(-1)).squeeze(-1)
        std = self.log_std.exp()
        action = out + std * torch.randn_like(out)
        return action, self._normal_logp(out, action)

    def evaluate(self, obs: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(log-probability of `action`, entropy) under the current policy."""
        out = self.pi(obs)
        if self.discrete:
            logp_all = torch.log_softmax(out, -1)
            entropy = -(logp_all.exp() * logp_all).sum(-1)
            return logp_all.gather(-1, action.unsqueeze(-1)).squeeze(-1), entropy
        entropy = (0.5 + 0.5 * LOG_2PI + self.log_std).sum().expand(out.shape[0])
        return self._normal_logp(out, action), entropy

    def _normal_logp(self, mean: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        z = (action - mean) * torch.exp(-self.log_std)
        return (-0.5 * z * z - self.log_std - 0.5 * LOG_2PI).sum(-1)

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        return self.v(obs).squeeze(-1)


class QNetwork(nn.Module):
    def __init__(self, obs_dim: int, n_actions: int, hidden: tuple[int, ...], activation: str):
        super().__init__()
        self.q = mlp(obs_dim, hidden, n_actions, activation, 1.0)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.q(obs)


def flat_tensors(prefix: str, module: nn.Module) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": v.detach().clone().contiguous() for k, v in module.state_dict().items()}


def load_flat(prefix: str, module: nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    n = len(prefix) + 1
    module.load_state_dict({k[n:]: v for k, v in tensors.items() if k.startswith(prefix + ".")})


def optimizer_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """An optimizer's state as flat tensors (for safetensors) and JSON (its param groups)."""
    sd = opt.state_dict()
    tensors = {f"optim.{pid}.{key}": (v if torch.is_tensor(v) else torch.tensor(v)).detach().clone().contiguous()
               for pid, entry in sd["state"].items() for key, v in entry.items()}
    groups = [{k: (list(v) if isinstance(v, tuple) else v) for k, v in g.items()} for g in sd["param_groups"]]
    return tensors, {"param_groups": groups}


def load_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], saved: dict) -> None:
    state: dict = {}
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, pid, key = name.split(".", 2)
            state.setdefault(int(pid), {})[key] = value
    groups = [{k: (tuple(v) if k == "betas" else v) for k, v in g.items()} for g in saved["param_groups"]]
    opt.load_state_dict({"state": state, "param_groups": groups})
