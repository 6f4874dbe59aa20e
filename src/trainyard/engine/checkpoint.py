"""Checkpoints: a directory per step with the weights (safetensors) and a small state file.

    checkpoints/
      step-00000120/model.safetensors   every tensor of model.state_dict()
      step-00000120/state.pt            optimizer, schedule, step, epoch, batch position, RNG states, config
      best.json                         {"step": 80, "score": 0.91}: which step directory is the best

Each checkpoint is written into a hidden temporary directory, flushed to disk
and renamed into place (`os.replace`), so a process killed at any instant
leaves either the previous checkpoints or the new one, never half of one.
The last `keep_last` step directories and the best one are kept.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

import torch

from trainyard.registry.durable import fsync_dir, fsync_tree

WEIGHTS = "model.safetensors"
STATE = "state.pt"
BEST = "best.json"


class Checkpoints:
    def __init__(self, directory: str | os.PathLike, keep_last: int = 2):
        self.dir = Path(directory)
        self.keep_last = max(1, keep_last)
        self.dir.mkdir(parents=True, exist_ok=True)
        for stale in self.dir.glob(".tmp-*"):  # left by a process killed mid-write
            shutil.rmtree(stale, ignore_errors=True)

    def save(self, step: int, model: torch.nn.Module, state: dict, *, best_step: int | None = None, best_score: float | None = None) -> Path:
        """Write step `step` atomically; keep `best_step` when pruning (and mark it in best.json when it is this step)."""
        from safetensors.torch import save_model

        final = self.dir / f"step-{step:08d}"
        tmp = self.dir / f".tmp-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            save_model(model, str(tmp / WEIGHTS))
            torch.save(state, tmp / STATE)
            fsync_tree(tmp)
            if final.exists():  # the same step again after a rollback: swap the old one out first
                old = self.dir / f".tmp-old-{uuid.uuid4().hex[:8]}"
                os.replace(final, old)
                shutil.rmtree(old, ignore_errors=True)
            os.replace(tmp, final)
            fsync_dir(self.dir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if best_step == step:
            _write_json_atomic(self.dir / BEST, {"step": step, "score": best_score})
        self._prune(best_step)
        return final

    def steps(self) -> list[int]:
        return sorted(int(p.name[5:]) for p in self.dir.glob("step-*") if (p / STATE).is_file() and (p / WEIGHTS).is_file())

    def latest(self) -> Path | None:
        steps = self.steps()
        return self.dir / f"step-{steps[-1]:08d}" if steps else None

    def path(self, step: int | None) -> Path | None:
        path = self.dir / f"step-{step:08d}" if step is not None else None
        return path if path is not None and (path / STATE).is_file() else None

    def best_info(self) -> dict | None:
        path = self.dir / BEST
        return json.loads(path.read_text()) if path.is_file() else None

    @staticmethod
    def load(path: Path, model: torch.nn.Module, device: str = "cpu") -> dict:
        """Put the weights of checkpoint `path` into `model`; return its state dict."""
        from safetensors.torch import load_model

        load_model(model, str(Path(path) / WEIGHTS), device=device)
        return torch.load(Path(path) / STATE, map_location=device, weights_only=True)

    def _prune(self, best_step: int | None) -> None:
        steps = self.steps()
        keep = set(steps[-self.keep_last:]) | {best_step}
        for step in steps:
            if step not in keep:
                shutil.rmtree(self.dir / f"step-{step:08d}", ignore_errors=True)


def _write_json_atomic(path: Path, obj: dict) -> None:
    tmp = path.with_name(f".tmp-{uuid.uuid4().hex[:8]}.json")
    with open(tmp, "w") as fh:
        json.dump(obj, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
