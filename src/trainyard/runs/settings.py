"""What a request for a run is: which kind (`kind_of`), and the settings of an image or text run. Light on purpose:
the CLI builds its options from these at start-up."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from trainyard.lm.settings import TASKS as LM_TASKS
from trainyard.options import setting

DEEP_TASKS = {"image-classification": "cnn", "text-classification": "minilm", "text-regression": "minilm"}


def kind_of(task: str | None, text_col: str | None = None, model: str | None = None) -> str:
    """The kind of run a request is: a language model, a retrieval encoder, reinforcement learning, an image/text network,
    or a table search."""
    if task in ("embedding", "rl"):
        return task
    if task in LM_TASKS:
        return "language-model"
    if is_deep(task, text_col, model):
        return "deep"
    return "tabular"


def is_deep(task: str | None, text_col: str | None = None, model: str | None = None) -> bool:
    """Does this call train a neural image/text model (rather than search tabular families)?"""
    return task in DEEP_TASKS or (task is None and (text_col is not None or model is not None))


@dataclass(frozen=True)
class NeuralSettings:
    """What an image or text run is asked for. The flagged fields are the neural options of `trainyard train`; the
    run's own (task, target, name, seed, split sizes) are declared in TrainConfig, and `loop` holds LoopConfig settings
    (--epochs, --lr, --grad-accum, ...)."""

    data: str = ""
    task: str | None = None
    target: str | None = None
    name: str | None = None
    seed: int = 0
    test_size: float | None = None
    val_size: float | None = None
    text_col: str | None = setting(None, "Column holding the text (text classification or regression; default: the one free-text "
                                         "column when --model minilm or a text --task is given).", flag="--text-col")
    model: str | None = setting(None, "cnn or mobilenetv2 (images); minilm or a Hugging Face model folder (text).", flag="--model")
    lora: bool | None = setting(None, "Fine-tune with LoRA adapters instead of all weights (text and language models).",
                                flag="--lora/--full")
    lora_r: int | None = setting(None, "LoRA rank (default 8; language models 16).", flag="--lora-r")
    batch_size: int | None = setting(None, "Examples per batch (neural and language models).", flag="--batch-size")
    image_size: int | None = setting(None, "Resize images to this side (pixels).", flag="--image-size")
    augment: bool | None = setting(None, "Random flips and crops of training images.", flag="--augment/--no-augment")
    width: int | None = setting(None, "Channels of the CNN's first stage.", flag="--width")
    max_length: int | None = setting(None, "Tokens kept per text.", flag="--max-length")
    cluster: str | None = None  # --cluster and --workers (declared in TrainConfig): data-parallel training on Ray
    workers: int | None = None
    loop: dict = field(default_factory=dict)

    def estimator_settings(self) -> dict:
        """The family estimator's settings: its own that were given, and the loop's."""
        own = {f: getattr(self, f) for f in ESTIMATOR_FIELDS if getattr(self, f) is not None}
        return {**own, "loop": dict(self.loop)} if self.loop else own

    def to_dict(self) -> dict:
        """The run's config: everything `resume` needs to rebuild the same split and estimator."""
        return asdict(self)

    @classmethod
    def from_dict(cls, call: dict) -> "NeuralSettings":
        """From a run's recorded config (also the flat form earlier versions recorded: loop settings beside the others)."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in call.items() if k in known and k != "loop"}
        loop = {**{k: v for k, v in call.items() if k not in known and v is not None}, **(call.get("loop") or {})}
        return cls(**{**values, "seed": values.get("seed") or 0}, loop=loop)


ESTIMATOR_FIELDS = ("lora", "lora_r", "batch_size", "image_size", "augment", "width", "max_length")
