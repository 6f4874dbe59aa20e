"""The "rl-policy" artifact kind: a policy saved as safetensors plus JSON (no pickle), hashed like every artifact.

    policy.safetensors   the actor (PPO) or Q-network (DQN), log-std, observation statistics
    meta.json            kind "rl-policy", algorithm, environment, spaces, network, hyperparameters,
                         evaluation, and the hash of every file (registry.artifact)
    episode.gif          one evaluation episode, when the environment renders
"""

from __future__ import annotations

import tempfile
from contextlib import contextmanager
from pathlib import Path

from trainyard.registry.artifact import register_loader, save_artifact

KIND = "rl-policy"
WEIGHTS = "policy.safetensors"


@contextmanager
def policy_files(policy, meta: dict):
    """({file name: path}, meta.json with the policy's kind, spaces and network) of `policy` (an RLPolicy), in a
    temporary folder that lives while the block runs: what registering the policy writes into its artifact."""
    from safetensors.torch import save_file

    with tempfile.TemporaryDirectory(prefix=".rl-save-") as tmp:
        weights = Path(tmp) / WEIGHTS
        save_file(policy.tensors, str(weights))
        yield {WEIGHTS: weights}, {**meta, "kind": KIND, "algo": policy.algo, "spaces": policy.spaces, "net": policy.net_spec,
                                   "hyperparameters": policy.meta.get("hyperparameters", {})}


def save_policy(policy, directory: Path, meta: dict, extra_files: dict[str, Path] | None = None) -> str:
    """Write `policy` (an RLPolicy) and `extra_files` as a hashed artifact; returns meta.json's SHA-256."""
    with policy_files(policy, meta) as (files, full):
        return save_artifact(None, Path(directory), full, extra_files={**files, **(extra_files or {})})


@register_loader(KIND)
def load_policy(directory: Path, meta: dict):
    from safetensors.torch import load_file

    from trainyard.rl.policy import RLPolicy

    return RLPolicy(meta["algo"], meta["spaces"], meta["net"], load_file(str(Path(directory) / WEIGHTS)), meta)
