"""Run configuration: presets are plain dicts, flags override them, the result is frozen."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from trainyard.errors import ConfigError, suggest

# Families in the order their defaults are tried: strong and fast first, so a good model exists early.
ALL_FAMILIES = ["lightgbm", "linear", "catboost", "xgboost", "extra_trees", "random_forest", "knn", "elastic_net", "decision_tree", "mlp"]

PRESETS: dict[str, dict] = {
    # bag_folds: k-fold bagging (scored out of fold) when train + validation has at most bag_max_rows rows.
    "fast": {"families": ["lightgbm", "linear", "xgboost", "extra_trees"], "refit": False, "time_limit": 30,
             "bag_folds": 0, "bag_max_rows": 0, "tune_top": 1, "ensemble_rounds": 10, "patience": 5},
    "balanced": {"families": ALL_FAMILIES, "refit": True, "time_limit": 60,
                 "bag_folds": 5, "bag_max_rows": 20_000, "tune_top": 3, "ensemble_rounds": 25, "patience": 10},
    "best": {"families": ALL_FAMILIES, "refit": True, "time_limit": 300,
             "bag_folds": 8, "bag_max_rows": 100_000, "tune_top": 4, "ensemble_rounds": 40, "patience": 25},
}


@dataclass(frozen=True)
class TrainConfig:
    target: str
    name: str | None = None
    preset: str = "balanced"
    time_limit: float = 60.0
    task: str | None = None
    metric: str | None = None
    families: tuple[str, ...] = ()
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    roles: dict = field(default_factory=dict)  # column -> role, beyond --ignore/--categorical
    refit: bool = True
    test_size: float = 0.2
    val_size: float = 0.2
    seed: int = 0
    group_col: str | None = None
    time_col: str | None = None
    max_trials: int | None = None
    force: bool = False  # train even when the data audit finds blocking problems
    sensitive: tuple[str, ...] = ()  # columns whose groups the audit reports on and the test evaluation reports fairness by
    class_weight: str = "auto"  # auto (balanced when the smallest class is under 10%), balanced or none
    calibrate: str | None = None  # auto, sigmoid, isotonic or temperature: calibrate on validation rows (no refit)
    threshold_metric: str = "f1"  # binary: the decision threshold is tuned on validation rows for this metric ...
    cost_fp: float | None = None  # ... or for the lowest cost of false positives / false negatives
    cost_fn: float | None = None
    learning_curve: bool = False
    n_boot: int = 1000  # bootstrap resamples for the test-set intervals
    bag_folds: int = 0
    bag_max_rows: int = 0
    tune_top: int = 3
    ensemble_rounds: int = 25
    patience: int = 10  # stop tuning a family after this many trials without improvement
    max_predict_ms_per_row: float | None = None
    memory_limit_mb: float | None = None
    weight_col: str | None = None
    trial_budget_only: bool = False  # --max-trials without --time-limit: no clock, so runs are reproducible

    def to_dict(self) -> dict:
        return asdict(self)

    def role_overrides(self) -> dict[str, str]:
        out = dict(self.roles)
        out.update({c: "ignore" for c in self.ignore})
        out.update({c: "categorical" for c in self.categorical})
        return out


def build_config(target: str, preset: str = "balanced", **overrides) -> TrainConfig:
    """Preset values, then every override that is not None."""
    if preset not in PRESETS:
        raise ConfigError(f"'{preset}' is not a preset.", suggest(preset, PRESETS))
    known = {f.name for f in fields(TrainConfig)}
    unknown = set(overrides) - known
    if unknown:
        raise ConfigError(f"Unknown setting(s): {', '.join(sorted(unknown))}.", suggest(sorted(unknown)[0], known))
    values = {k: (tuple(v) if isinstance(v, list) else v) for k, v in PRESETS[preset].items()}
    values.update({k: (tuple(v) if isinstance(v, list) else v) for k, v in overrides.items() if v is not None})
    cfg = TrainConfig(target=target, preset=preset, **values)
    if cfg.time_limit <= 0:
        raise ConfigError(f"--time-limit must be positive, got {cfg.time_limit}.", "give a number of seconds, e.g. --time-limit 60.")
    if not (0 < cfg.test_size < 0.5 and 0 < cfg.val_size < 0.5):
        raise ConfigError("test and validation sizes must each be between 0 and 0.5.", "e.g. --test-size 0.2.")
    if cfg.class_weight not in ("auto", "balanced", "none"):
        raise ConfigError(f"'{cfg.class_weight}' is not a class-weight setting.", "use auto, balanced or none.")
    return cfg
