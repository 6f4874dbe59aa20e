"""The training loop's settings (`LoopConfig`), its progress (`LoopState`, saved in every checkpoint) and what a
fit returns (`LoopResult`). No PyTorch here, so estimators and configs can name loop settings without loading it."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from trainyard.errors import ConfigError, suggest
from trainyard.options import setting


@dataclass(frozen=True)
class LoopConfig:
    epochs: int = setting(10, "Passes over the training data.", flag="--epochs")
    max_steps: int | None = setting(None, "Optimizer steps (default: --epochs passes, or what --time-limit allows).", flag="--max-steps")
    optimizer: str = setting("adamw", "adamw or sgd.", flag="--optimizer")
    lr: float = setting(1e-3, "Peak learning rate.", flag="--lr")
    weight_decay: float = setting(0.01, "Weight decay (on weight matrices, not biases and norms).", flag="--weight-decay")
    momentum: float = 0.9  # sgd only
    schedule: str = setting("cosine", "Learning-rate schedule after the warm-up: constant, cosine, step or plateau.", flag="--schedule")
    warmup: float = setting(0.0, "Warm-up: a fraction of the steps, or steps when >= 1.", flag="--warmup")
    step_size: int = 1000  # step schedule: multiply by gamma every step_size steps
    gamma: float = 0.1
    min_lr_ratio: float = 0.0  # cosine floor
    plateau_patience: int = 2  # plateau schedule: evaluations without improvement before lowering
    plateau_factor: float = 0.5
    clip_norm: float | None = setting(1.0, "Clip the gradient norm to this (0: no clipping).", flag="--clip-norm")
    grad_accum: int = setting(1, "Micro-batches accumulated into each optimizer step.", flag="--grad-accum")
    precision: str = setting("auto", "auto (bf16 where the hardware computes it natively), fp32 or bf16 (autocast).", flag="--precision")
    device: str = setting("auto", "auto (CUDA when present), cpu or cuda.", flag="--device")
    seed: int = 0
    eval_every: int | None = setting(None, "Evaluate on held-out data every N steps (default: each epoch; language models: 10 times "
                                               "over --max-steps).", flag="--eval-every")
    monitor: str = "val_loss"
    mode: str = "auto"  # min | max | auto (max for accuracy-like names)
    patience: int | None = setting(5, "Early stopping: evaluations without improvement before stopping (0: never stop early).",
                                   flag="--patience")
    restore_best: bool = True
    checkpoint_every: int | None = setting(200, "Checkpoint every N optimizer steps.", flag="--checkpoint-every")
    keep_last: int = 2
    spike_factor: float | None = 10.0
    lr_backoff: float = 0.5
    max_rollbacks: int = 3
    time_limit: float | None = None  # seconds of training in the whole run (earlier calls included): then stop cleanly at a checkpoint
    replan: bool = False  # with time_limit: re-plan the total steps from the measured speed so the schedule ends at the deadline

    @classmethod
    def from_dict(cls, values: dict) -> "LoopConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"Unknown training setting '{unknown[0]}'.", suggest(unknown[0], known))
        return cls(**values)

    @property
    def maximize(self) -> bool:
        if self.mode == "auto":
            return not any(word in self.monitor for word in ("loss", "error", "rmse", "mae", "perplexity"))
        return self.mode == "max"


@dataclass
class LoopState:
    """Everything about the run's progress that is not a tensor; saved in every checkpoint."""

    step: int = 0  # optimizer steps done
    epoch: int = 0
    batch: int = 0  # batches of this epoch consumed
    lr_scale: float = 1.0  # lowered by each rollback
    loss_ema: float | None = None
    first_loss: float | None = None
    best_score: float | None = None
    best_step: int | None = None
    bad_evals: int = 0
    rollbacks: int = 0
    skip: list = field(default_factory=list)  # [epoch, batch] pairs never to be trained on again
    finished: bool = False
    stopped_early: bool = False
    timed_out: bool = False  # stopped by config.time_limit
    total_steps: int | None = None  # the plan: the schedule ends here (moved while the run goes with config.replan)
    seconds: float = 0.0  # training seconds of the whole run up to this checkpoint (earlier calls included)


@dataclass
class LoopResult:
    state: LoopState
    history: list[dict]  # one row per evaluation
    seconds: float  # of this call
    samples: int
