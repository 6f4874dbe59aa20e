"""Checkpoints of a reinforcement-learning run: safetensors, JSON and .npy files, no pickle.

    checkpoints/
      step-00040960/tensors.safetensors  networks, optimizer moments, the torch generator's state
      step-00040960/state.json           counters, numpy generator, normaliser statistics, episode starts, schedule
      step-00040960/obs.npy, env0_actions.npy, ..., buffer_obs.npy, ...   current observations, actions since each
                                         episode began (for the replay), the replay buffer (DQN)

A checkpoint is written into a hidden temporary directory, flushed and renamed into place, so a process killed
at any instant leaves the previous checkpoint or the new one, never half of one. The last `keep_last` are kept.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

import numpy as np

from trainyard.registry.durable import fsync_dir, fsync_tree

TENSORS = "tensors.safetensors"
STATE = "state.json"


class RLCheckpoints:
    def __init__(self, directory: str | os.PathLike, keep_last: int = 2):
        self.dir = Path(directory)
        self.keep_last = max(1, keep_last)
        self.dir.mkdir(parents=True, exist_ok=True)
        for stale in self.dir.glob(".tmp-*"):  # left by a process killed mid-write
            shutil.rmtree(stale, ignore_errors=True)

    def steps(self) -> list[int]:
        return sorted(int(p.name[5:]) for p in self.dir.glob("step-*") if (p / STATE).is_file())

    def latest(self) -> Path | None:
        steps = self.steps()
        return self.dir / f"step-{steps[-1]:08d}" if steps else None

    def save(self, step: int, tensors: dict, state: dict, arrays: dict[str, np.ndarray]) -> Path:
        from safetensors.torch import save_file

        final = self.dir / f"step-{step:08d}"
        tmp = self.dir / f".tmp-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            save_file(tensors, str(tmp / TENSORS))
            for name, array in arrays.items():
                np.save(tmp / f"{name}.npy", np.ascontiguousarray(array), allow_pickle=False)
            (tmp / STATE).write_text(json.dumps({**state, "arrays": sorted(arrays)}))
            fsync_tree(tmp)
            if final.exists():  # the same step again (after a rollback): swap the old one out first
                old = self.dir / f".tmp-old-{uuid.uuid4().hex[:8]}"
                os.replace(final, old)
                shutil.rmtree(old, ignore_errors=True)
            os.replace(tmp, final)
            fsync_dir(self.dir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        for old_step in self.steps()[:-self.keep_last]:
            shutil.rmtree(self.dir / f"step-{old_step:08d}", ignore_errors=True)
        return final

    @staticmethod
    def load(path: Path) -> tuple[dict, dict, dict[str, np.ndarray]]:
        from safetensors.torch import load_file

        path = Path(path)
        state = json.loads((path / STATE).read_text())
        arrays = {name: np.load(path / f"{name}.npy", allow_pickle=False) for name in state.pop("arrays")}
        return load_file(str(path / TENSORS)), state, arrays
