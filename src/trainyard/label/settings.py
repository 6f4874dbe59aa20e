"""A labelling project's settings, each declared once (the flags of `trainyard label create` are made from them)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from trainyard.errors import ConfigError, suggest
from trainyard.options import setting

QUEUES = ("random", "uncertainty", "diversity", "mix", "review")
UNCERTAINTY = ("least-confidence", "margin", "entropy")
FEATURES = ("auto", "minilm", "tfidf", "prepared", "pixels", "backbone")


@dataclass(frozen=True)
class LabelSettings:
    """How a project chooses items and when it retrains; stored with the project."""

    queue: str = setting("uncertainty", "Which items come next: random, uncertainty, diversity, mix (uncertain and diverse) "
                                        "or review (suspected label errors, conflicting duplicates, disagreements).", flag="--queue")
    uncertainty: str = setting("margin", "How uncertainty is measured: least-confidence, margin or entropy.", flag="--uncertainty")
    retrain_every: int = setting(10, "Retrain the suggestion model after this many new labels.", flag="--retrain-every")
    overlap: float = setting(0.0, "Share of items labelled by two annotators (0 to 1), for agreement.", flag="--overlap")
    target_accuracy: float = setting(0.9, "Held-out accuracy the estimate of labels still needed aims at.", flag="--target-accuracy")
    features: str = setting("auto", "Item features for the model and for diversity: auto (MiniLM for text, prepared columns "
                                    "for tables, pixels for images), minilm, tfidf, prepared, pixels or backbone (MobileNetV2, images).", flag="--features")
    lease_seconds: int = setting(300, "How long an item shown to one annotator is kept from the others.", flag="--lease-seconds")
    seed: int = setting(0, "Seed of the random queue and the model.", flag="--seed")

    def __post_init__(self):
        _one_of("--queue", self.queue, QUEUES)
        _one_of("--uncertainty", self.uncertainty, UNCERTAINTY)
        _one_of("--features", self.features, FEATURES)
        if int(self.retrain_every) < 1:
            raise ConfigError(f"--retrain-every must be at least 1, got {self.retrain_every}.", "give a number of labels, e.g. --retrain-every 10.")
        if not 0.0 <= float(self.overlap) <= 1.0:
            raise ConfigError(f"--overlap must be between 0 and 1, got {self.overlap}.", "give a share, e.g. --overlap 0.1 for one item in ten.")
        if not 0.0 < float(self.target_accuracy) <= 1.0:
            raise ConfigError(f"--target-accuracy must be in (0, 1], got {self.target_accuracy}.", "give a share, e.g. --target-accuracy 0.9.")
        if int(self.lease_seconds) < 5:
            raise ConfigError(f"--lease-seconds must be at least 5, got {self.lease_seconds}.", "give seconds, e.g. --lease-seconds 300.")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict | None) -> "LabelSettings":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in (values or {}).items() if k in known})


def _one_of(flag: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{flag} {value!r} is not known.", f"use one of {', '.join(choices)}; {suggest(str(value), choices)}")
