"""Every setting of a language-model run, declared once, and what each task sets up for the training loop."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields

from trainyard.errors import ConfigError, suggest
from trainyard.lm.model import ARCHS, SIZES
from trainyard.options import setting

TASKS = ("causal-lm", "sft", "preference", "reward")
DEFAULT_LR = {"causal-lm": 1e-3, "sft": 3e-4, "preference": 5e-5, "reward": 1e-4}
LORA_LR = 1e-3


@dataclass(frozen=True)
class LMSettings:
    """Every setting of a language-model run. The flagged fields are the language-model options of `trainyard train`; the
    others take the run's options (--name, --seed, --time-limit, TrainConfig) and the loop's (--epochs, --lr, ..., LoopConfig) by
    name, with defaults for language models; `loop` holds any other LoopConfig setting."""

    task: str = "causal-lm"
    name: str | None = None
    base: str | None = setting(None, "Model to fine-tune (sft, preference, reward): registry ref (lm@2) or a Hugging Face model "
                                     "directory.", flag="--base")
    tokenizer: str | None = setting(None, "Tokenizer directory (default: the base's, or one trained on the corpus).", flag="--tokenizer")
    vocab_size: int = setting(8000, "Vocabulary of the tokenizer trained on the corpus (default 8000).", flag="--vocab-size")
    size: str = setting("10M", "Model size to pre-train: tiny, 1M, 3M, 10M, 30M or 60M (default 10M).", flag="--size")
    arch: str = setting("gpt2", "gpt2 or llama (default gpt2).", flag="--arch")
    experts: int = setting(0, "Mixture of this many experts in every feed-forward layer (0: dense).", flag="--experts")
    context: int = setting(256, "Tokens per training window (default 256).", flag="--context")
    batch_size: int = 16
    epochs: int | None = None  # default: 1, or as many as max_steps (given, or planned for a time limit) take
    max_steps: int | None = None  # with a time limit and no max_steps: planned from a measured step time, then re-planned as it goes
    time_limit: float | None = None  # seconds for the whole run (setup, training, final evaluation; a resumed run: what is left)
    lr: float | None = None  # default per task (LoRA: 1e-3)
    warmup: float = 0.05  # fraction of steps (or steps when >= 1)
    eval_every: int | None = None  # default: 10 evaluations over max_steps, else one per epoch
    eval_batches: int = 20
    checkpoint_every: int | None = 200
    lora: bool = False
    lora_r: int = 16
    lora_alpha: int | None = None  # default 2 * r
    method: str = setting("dpo", "Preference method: dpo (default) or rloo (policy gradient against --reward-model).", flag="--method")
    beta: float = setting(0.1, "DPO temperature; for rloo the weight of the KL penalty (default 0.1).", flag="--beta")
    reward_model: str | None = setting(None, "rloo: reward model scoring the samples (trained with --task reward).", flag="--reward-model")
    rollouts: int = setting(4, "rloo: completions sampled per prompt (default 4).", flag="--rollouts")
    max_new_tokens: int = setting(48, "rloo: most tokens per sampled completion (default 48).", flag="--max-new-tokens")
    seed: int = 0
    val_fraction: float = setting(0.05, "Share of documents / pairs held out (default 0.05).", flag="--val-fraction")
    separator: str | None = setting(None, "Split corpus files into documents on this string (e.g. '\\n%\\n').", flag="--doc-separator")
    text_field: str | None = setting(None, "JSONL field holding the text (default: 'text').", flag="--text-field")
    gradient_checkpointing: bool = setting(False, "Recompute activations in the backward pass: far less memory for about a third "
                                                  "more compute.", flag="--gradient-checkpointing")
    quantize: str | None = setting(None, "Load the LoRA base in 8bit or 4bit (QLoRA; needs a CUDA GPU and bitsandbytes).",
                                   flag="--quantize")
    device: str = "auto"
    cluster: str | None = None  # --cluster and --workers (declared in TrainConfig): data-parallel training on Ray (not RLOO)
    workers: int | None = None
    samples: int = 3  # generations recorded before/after training
    loop: dict = field(default_factory=dict)  # any other LoopConfig field, passed through

    def __post_init__(self):
        if self.task not in TASKS:
            raise ConfigError(f"'{self.task}' is not a language-model task.", suggest(self.task, TASKS))

        if self.task == "causal-lm" and not self.base and (self.size not in SIZES or self.arch not in ARCHS):
            bad, valid = (self.size, SIZES) if self.size not in SIZES else (self.arch, ARCHS)
            raise ConfigError(f"'{bad}' is not a model {'size' if valid is SIZES else 'architecture'}.", suggest(bad, valid))
        if self.time_limit is not None and self.time_limit <= 0:
            raise ConfigError(f"--time-limit must be positive, got {self.time_limit:g}.", "give seconds or a duration: --time-limit 600, 30m, 1h.")
        if self.task != "causal-lm" and not self.base:
            raise ConfigError(f"--task {self.task} fine-tunes an existing model, but no --base was given.",
                              "pass --base lm@2 (a registry ref) or --base DIR (a Hugging Face model directory).")

    @classmethod
    def from_dict(cls, values: dict) -> "LMSettings":
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            raise ConfigError(f"Unknown language-model setting '{unknown[0]}'.", suggest(unknown[0], [f.name for f in fields(cls)]))
        return cls(**values)

    @property
    def learning_rate(self) -> float:
        return self.lr or (LORA_LR if self.lora else DEFAULT_LR[self.task])


@dataclass
class TaskSetup:
    """What one language-model task (pretrain, finetune, preference, reward) sets up for the loop."""

    lm: object  # LanguageModel
    batches: object
    loss_fn: Callable
    evaluate: Callable  # model -> {"val_loss": ..., ...}
    prompts: list[str]  # for the before/after samples
    meta: dict = field(default_factory=dict)
    monitor: str = "val_loss"
    loop: dict = field(default_factory=dict)  # LoopConfig fields this task needs (the user's --loop settings still win)
