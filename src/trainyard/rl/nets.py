"""Small MLPs for the policies: an actor-critic (separate policy and value networks) and a Q-network."""

from __future__ import annotations

import math

import torch
from torch import nn

ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU}
LOG_2PI = math.log(2 * math.pi)
SDE_EPSILON = 1e-6  # added to gSDE's variance (as SB3)


def mlp(n_in: int, hidden: tuple[int, ...], n_out: int, activation: str, out_gain: float | None) -> nn.Sequential:
    """Linear layers with orthogonal initialisation (gain sqrt(2) inside, `out_gain` on the last), zero biases;
    `out_gain=None`: PyTorch's default initialisation of nn.Linear throughout."""
    init = (lambda layer, gain: layer) if out_gain is None else _orthogonal
    layers, size = [], n_in
    for width in hidden:
        layers += [init(nn.Linear(size, width), math.sqrt(2)), ACTIVATIONS[activation]()]
        size = width
    layers.append(init(nn.Linear(size, n_out), out_gain))
    return nn.Sequential(*layers)


def _orthogonal(layer: nn.Linear, gain: float) -> nn.Linear:
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.zeros_(layer.bias)
    return layer


class ActorCritic(nn.Module):
    """The policy network (observation -> action logits, or Gaussian means) and the value network, same shape,
    kept side by side in one stack of batched matrices: one `baddbmm` per layer computes both (about 1.4x faster
    per PPO minibatch than two nn.Linear stacks on one core). `actor_state()` gives the policy half in nn.Linear
    layout, as `mlp` builds it (what the saved policy holds).

    Continuous actions explore in one of two ways. Plain: a Gaussian with a learned state-independent log-std
    (`log_std` of shape (action_dim,)). gSDE (`sde=True`, generalised state-dependent exploration, Raffin et al.
    2022): the noise is the policy's last hidden features times a noise matrix drawn from N(0, exp(log_std)^2)
    (`log_std` of shape (features, action_dim)), held fixed for some steps, so exploration is smooth in time; the
    action's distribution is a Gaussian with variance features^2 @ exp(log_std)^2 (features not differentiated)."""

    def __init__(self, obs_dim: int, action_dim: int, discrete: bool, hidden: tuple[int, ...], activation: str,
                 log_std_init: float = 0.0, sde: bool = False):
        super().__init__()
        self.discrete, self.action_dim, self.activation = discrete, action_dim, activation
        self.sde = sde and not discrete
        sizes = [obs_dim, *hidden, action_dim]
        self.weights, self.biases = nn.ParameterList(), nn.ParameterList()
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            last = i == len(sizes) - 2
            w = torch.zeros(2, n_in, n_out)
            for k in range(2):  # 0: policy, 1: value (its last layer has one output, in column 0)
                rows = 1 if last and k == 1 else n_out
                block = torch.empty(rows, n_in)  # nn.Linear's (out, in) layout, initialised as nn.Linear would be here
                nn.init.orthogonal_(block, (0.01 if k == 0 else 1.0) if last else math.sqrt(2))
                w[k, :, :rows] = block.T
            self.weights.append(nn.Parameter(w))
            self.biases.append(nn.Parameter(torch.zeros(2, 1, n_out)))
        if not discrete:
            shape = (hidden[-1], action_dim) if self.sde else (action_dim,)
            self.log_std = nn.Parameter(torch.full(shape, float(log_std_init)))

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(policy outputs, values, the policy's last hidden features) for a batch of observations."""
        h = obs.unsqueeze(0).expand(2, -1, -1)
        act = torch.tanh if self.activation == "tanh" else torch.relu
        last = len(self.weights) - 1
        for i in range(last):
            h = act(torch.baddbmm(self.biases[i], h, self.weights[i]))
        out = torch.baddbmm(self.biases[last], h, self.weights[last])
        return out[0], out[1, :, 0], h[0]

    def sample_noise(self, n: int) -> torch.Tensor:
        """gSDE: `n` noise matrices (n, features, action_dim), entries from N(0, exp(log_std)^2); the torch generator."""
        std = self.log_std.detach().exp()
        return torch.randn((n, *std.shape)) * std

    def sample(self, obs: torch.Tensor, noise: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(action, log-probability, value) with the action sampled from the policy (the distributions written
        out: cheaper than torch.distributions on the small batches of a rollout). gSDE: `noise` holds one noise
        matrix per observation (`sample_noise`)."""
        out, value, features = self(obs)
        if self.discrete:
            logp_all = torch.log_softmax(out, -1)
            action = torch.multinomial(logp_all.exp(), 1).squeeze(-1)
            return action, logp_all.gather(-1, action.unsqueeze(-1)).squeeze(-1), value
        if self.sde:
            action = out + torch.bmm(features.unsqueeze(1), noise).squeeze(1)
        else:
            action = out + self.log_std.exp() * torch.randn_like(out)
        return action, self._normal_logp(out, action, self._log_sigma(features)), value

    def evaluate(self, obs: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(log-probability of `action`, entropy, value) under the current networks."""
        out, value, features = self(obs)
        if self.discrete:
            logp_all = torch.log_softmax(out, -1)
            entropy = -(logp_all.exp() * logp_all).sum(-1)
            return logp_all.gather(-1, action.unsqueeze(-1)).squeeze(-1), entropy, value
        log_sigma = self._log_sigma(features)
        entropy = (0.5 + 0.5 * LOG_2PI + log_sigma).sum(-1).expand(out.shape[0])
        return self._normal_logp(out, action, log_sigma), entropy, value

    def _log_sigma(self, features: torch.Tensor) -> torch.Tensor:
        """Log standard deviation of the action: the parameter itself, or gSDE's state-dependent one (n, action_dim)."""
        if not self.sde:
            return self.log_std
        variance = (features.detach() ** 2) @ torch.exp(2 * self.log_std)
        return 0.5 * torch.log(variance + SDE_EPSILON)

    @staticmethod
    def _normal_logp(mean: torch.Tensor, action: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:
        z = (action - mean) * torch.exp(-log_sigma)
        return (-0.5 * z * z - log_sigma - 0.5 * LOG_2PI).sum(-1)

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        return self(obs)[1]

    def actor_state(self) -> dict[str, torch.Tensor]:
        """The policy half as the state dict of `mlp(obs_dim, hidden, action_dim, ...)` (Linear layers at 0, 2, 4, ...)."""
        out = {}
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            out[f"{2 * i}.weight"] = w[0].detach().T.contiguous().clone()
            out[f"{2 * i}.bias"] = b[0, 0].detach().clone()
        return out


class QNetwork(nn.Module):
    """DQN's Q-network, initialised as PyTorch initialises nn.Linear (as SB3's DQN, which the RL Zoo's DQN values
    were tuned with; the orthogonal initialisation that suits the actor-critic gives initial Q-values several times
    larger)."""

    def __init__(self, obs_dim: int, n_actions: int, hidden: tuple[int, ...], activation: str):
        super().__init__()
        self.q = mlp(obs_dim, hidden, n_actions, activation, None)

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
