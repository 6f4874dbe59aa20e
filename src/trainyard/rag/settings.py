"""The settings of an encoder fine-tuning run (`trainyard train pairs.jsonl --task embedding`). Light on purpose: the
CLI reads these fields at start-up."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EmbeddingSettings:
    """Every setting of an encoder fine-tuning run, declared once."""

    base: str = "minilm"  # minilm, a Hugging Face directory, or a registered encoder
    name: str | None = None
    epochs: int = 1
    max_steps: int | None = None
    batch_size: int = 32  # pairs per batch: each query has batch_size - 1 in-batch negatives
    lr: float = 2e-5
    max_length: int = 128  # word pieces per text
    scale: float = 20.0  # cosine -> logit multiplier (temperature 0.05)
    val_fraction: float = 0.1  # held-out pairs for the before/after retrieval measure
    checkpoint_every: int | None = 200  # optimizer steps between checkpoints (`trainyard resume` continues from the last)
    lora: bool = False  # train low-rank adapters on the attention's query and value projections, merged before saving
    lora_r: int = 8
    seed: int = 0
    device: str = "cpu"
    threads: int | None = None
