"""Language models in the registry: a Hugging Face directory inside a hashed trainyard artifact.

An artifact directory holds meta.json (kind "language-model", hashes of every
file) next to a normal Hugging Face model directory (config.json,
model.safetensors, tokenizer files), so it also loads with
`AutoModelForCausalLM.from_pretrained`. A LoRA run stores only the adapter
(adapter_config.json + adapter_model.safetensors) and points at its base in
meta.json; `trainyard merge` folds it into a full model.

`--base` accepts a registry ref (lm@2) or a local Hugging Face directory.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from trainyard.errors import NotFoundError
from trainyard.lm.generate import Sampling, generate, stream
from trainyard.lm.labels import task_metric
from trainyard.lm.tokenizer import load_tokenizer
from trainyard.registry.artifact import register_loader, save_artifact
from trainyard.registry.loading import load_with_meta

KIND = "language-model"


class LanguageModel:
    """A causal LM with its tokenizer: what `trainyard.load("lm@2")` returns for a language model."""

    kind = KIND

    def __init__(self, model, tokenizer, meta: dict | None = None, directory: Path | None = None):
        self.model = model
        self.tokenizer = tokenizer
        self.meta = meta or {}
        self.directory = directory  # where it was loaded from (its artifact or Hugging Face directory), if anywhere

    @classmethod
    def from_directory(cls, path: str | os.PathLike, meta: dict | None = None) -> "LanguageModel":
        """A Hugging Face model directory (config + safetensors + tokenizer), or a trainyard LoRA artifact."""
        from transformers import AutoModelForCausalLM


        quiet_transformers()
        path = Path(path)
        if (path / "adapter_config.json").is_file() and meta and meta.get("base"):
            return cls._with_adapter(path, meta)
        if not (path / "config.json").is_file():
            raise NotFoundError(f"{path} is not a Hugging Face model directory (no config.json).",
                                "pass a registry ref such as lm@2, or a directory with config.json, model.safetensors and the tokenizer files.")
        model = AutoModelForCausalLM.from_pretrained(str(path))
        model.eval()
        return cls(model, load_tokenizer(path), meta, path)

    @classmethod
    def from_artifact(cls, directory: Path, meta: dict) -> "LanguageModel":
        return cls.from_directory(directory, meta)

    @classmethod
    def _with_adapter(cls, path: Path, meta: dict) -> "LanguageModel":
        from peft import PeftModel

        home = path.resolve().parents[2]  # <workspace>/artifacts/<name>/<run>: the base lives in the same workspace
        base = load_base(meta["base"]["ref"], home if (home / "artifacts").is_dir() else None).merged()  # a base may itself be an adapter
        model = PeftModel.from_pretrained(base.model, str(path))
        model.eval()
        return cls(model, base.tokenizer, meta)

    @property
    def is_adapter(self) -> bool:
        return hasattr(self.model, "peft_config")

    def merged(self) -> "LanguageModel":
        """The adapter folded into the base weights (a plain model; outputs unchanged)."""
        if not self.is_adapter:
            return self
        model = self.model.merge_and_unload()
        model.requires_grad_(True)  # a plain model again: every weight trainable, as after from_pretrained
        return LanguageModel(model, self.tokenizer, {**self.meta, "merged_from_adapter": True})

    def generate(self, prompt: str, **sampling):
        return generate(self.model, self.tokenizer, prompt, Sampling(**sampling))

    def stream(self, prompt: str, **sampling):
        return stream(self.model, self.tokenizer, prompt, Sampling(**sampling))


def quiet_transformers() -> None:
    """No tqdm bars from transformers (loading, saving weights): they would break into our rich progress display;
    and not PEFT's use of a property transformers deprecated (nothing the user can act on)."""
    import warnings

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)


@contextlib.contextmanager
def hf_errors_only():
    """Only errors from transformers' logger inside the block (for warnings that are expected and not actionable)."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)


def load_base(ref_or_dir: str, workspace: str | os.PathLike | None = None) -> LanguageModel:
    """A registry ref (lm, lm@2, lm@production) or a local Hugging Face directory."""
    if Path(ref_or_dir).is_dir():
        return LanguageModel.from_directory(ref_or_dir, {"source": str(Path(ref_or_dir).resolve())})
    model, meta = load_with_meta(ref_or_dir, workspace)
    if not isinstance(model, LanguageModel):
        raise NotFoundError(f"'{ref_or_dir}' is a {meta.get('task', 'tabular')} model, not a language model.",
                            "pass a language model's ref (see `trainyard models`) or a Hugging Face model directory.")
    model.meta.setdefault("ref", f"{meta.get('name', ref_or_dir.split('@')[0])}@{meta['version']}")
    return model


def register_language_model(ws, name: str, run_id: str, lm: LanguageModel, meta: dict, *, metrics: dict | None = None,
                            arrays: dict | None = None) -> int:
    """Save `lm` (full weights, or only the adapter for a PEFT model) as a hashed artifact and record a new version;
    `arrays` ({file name: numpy array}) are saved next to it (.npy)."""
    import numpy as np


    ws.ensure()
    artifact_dir = ws.artifacts / name / run_id
    with tempfile.TemporaryDirectory(dir=ws.home, prefix=".lm-save-") as tmp:
        quiet_transformers()
        lm.model.save_pretrained(tmp, safe_serialization=True)
        lm.tokenizer.save_pretrained(tmp)
        for fname, array in (arrays or {}).items():
            np.save(Path(tmp) / fname, array)
        files = {p.relative_to(tmp).as_posix(): p for p in Path(tmp).rglob("*") if p.is_file()}
        full_meta = {"kind": KIND, "name": name, "run_id": run_id, "metrics": metrics or {}, **meta}
        digest = save_artifact(None, artifact_dir, full_meta, extra_files=files)
    metric, key = task_metric(meta.get("task", "causal-lm"), meta.get("settings", {}).get("method", "dpo"))
    return ws.store.register_model(name, artifact_path=str(artifact_dir.relative_to(ws.home)), meta_sha256=digest, run_id=run_id,
                                   task=meta.get("task", "causal-lm"), metric=metric, test_score=(metrics or {}).get(key),
                                   metrics=metrics or {}, family=meta.get("family", "transformer"))


register_loader(KIND)(LanguageModel.from_artifact)
