"""The training loop's settings (`LoopConfig`), its progress (`LoopState`, saved in every checkpoint) and what a
fit returns (`LoopResult`). No PyTorch here, so estimators and configs can name loop settings without loading it."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from trainyard.errors import ConfigError, suggest


@dataclass(frozen=True)
class LoopConfig:
    epochs: int = 10
    max_steps: int | None = None
    optimizer: str = "adamw"  # adamw | sgd
    lr: float = 1e-3
    weight_decay: float = 0.01
    momentum: float = 0.9  # sgd only
    schedule: str = "cosine"  # constant | cosine | step | plateau (each after `warmup`)
    warmup: float = 0.0  # steps, or a fraction of all steps when < 1
    step_size: int = 1000  # step schedule: multiply by gamma every step_size steps
    gamma: float = 0.1
    min_lr_ratio: float = 0.0  # cosine floor
    plateau_patience: int = 2  # plateau schedule: evaluations without improvement before lowering
    plateau_factor: float = 0.5
    clip_norm: float | None = 1.0
    grad_accum: int = 1
    precision: str = "auto"  # auto | fp32 | bf16
    device: str = "auto"  # auto | cpu | cuda
    seed: int = 0
    eval_every: int | None = None  # steps; None = at the end of every epoch
    monitor: str = "val_loss"
    mode: str = "auto"  # min | max | auto (max for accuracy-like names)
    patience: int | None = 5  # early stopping: evaluations without improvement
    restore_best: bool = True
    checkpoint_every: int | None = 200  # steps
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
