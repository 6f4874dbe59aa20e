"""Run configuration: presets are plain dicts, flags override them, the result is frozen."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from trainyard.errors import ConfigError, suggest
from trainyard.options import setting

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
    """Every setting of a table run. The fields with a flag are also the CLI's options of `trainyard train` (the ones
    every kind of run shares, like --name, --seed and --time-limit, are declared here once)."""

    target: str = setting(None, "Column to predict (tables and texts).", flag="--target", short="-t")
    name: str | None = setting(None, "Registry name for the model (default: the file name).", flag="--name", short="-n")
    preset: str = setting("balanced", "fast, balanced or best.", flag="--preset", short="-p")
    time_limit: float = setting(60.0, "Time for the whole run: seconds or 30m, 1h (tables: preset default fast 30, balanced 60, best "
                                      "300; neural and language models: no limit unless given).", flag="--time-limit", kind="duration")
    task: str | None = setting(None, "binary, multiclass, regression (default: inferred), image-classification, text-classification, "
                                     "text-regression (default for texts: from the target); language models: causal-lm, sft, "
                                     "preference, reward.", flag="--task")
    metric: str | None = setting(None, "Metric to optimise (default: roc_auc, accuracy or rmse).", flag="--metric")
    families: tuple[str, ...] = ()
    include: tuple[str, ...] = setting((), "Only these model families (comma-separated or repeated).", flag="--include", kind="list")
    exclude: tuple[str, ...] = setting((), "Leave out these model families.", flag="--exclude", kind="list")
    ignore: tuple[str, ...] = setting((), "Columns to leave out.", flag="--ignore", kind="list")
    categorical: tuple[str, ...] = setting((), "Columns to treat as categories.", flag="--categorical", kind="list")
    roles: dict = field(default_factory=dict)  # column -> role, beyond --ignore/--categorical
    refit: bool = True
    refit_all: bool = setting(True, "After the test, refit the final model on every labelled row (test rows included) when the time "
                                    "allows; the reported test scores stay those of the model before (--no-refit-all saves that one).",
                              flag="--refit-all/--no-refit-all")
    test_size: float = setting(0.2, "Share of rows held out for the final test (default 0.2).", flag="--test-size")
    val_size: float = 0.2
    seed: int = setting(0, "Random seed (split, models).", flag="--seed")
    group_col: str | None = setting(None, "Keep each group of this column in one split.", flag="--group-col")
    time_col: str | None = setting(None, "Split by time on this column (train on the past).", flag="--time-col")
    max_trials: int | None = setting(None, "Stop after this many trials.", flag="--max-trials")
    force: bool = setting(False, "Train even when the audit finds blocking problems.", flag="--force")
    sensitive: tuple[str, ...] = setting((), "Sensitive columns: the audit reports their groups and the test evaluation reports "
                                             "fairness by them (comma-separated or repeated).", flag="--sensitive", short="-s", kind="list")
    class_weight: str = setting("auto", "auto (balanced when the smallest class is under 10%), balanced or none.", flag="--class-weight")
    calibrate: str | None = setting(None, "auto, sigmoid, isotonic or temperature: calibrate probabilities on the validation rows.",
                                    flag="--calibrate")
    threshold_metric: str = setting("f1", "Binary: tune the decision threshold on validation rows for this metric (default f1).",
                                    flag="--threshold-metric")
    cost_fp: float | None = setting(None, "Binary: cost of a false positive (tune the threshold for the lowest cost).", flag="--cost-fp")
    cost_fn: float | None = setting(None, "Binary: cost of a false negative.", flag="--cost-fn")
    learning_curve: bool = setting(False, "Add learning curves (score vs training rows) to the report.", flag="--learning-curve")
    n_boot: int = 1000  # bootstrap resamples for the test-set intervals
    bag_folds: int = setting(0, "k-fold bagging when the data is small enough (0: off; preset default).", flag="--bag-folds")
    bag_max_rows: int = 0
    tune_top: int = 3
    ensemble_rounds: int = 25
    patience: int = 10  # stop tuning a family after this many trials without improvement
    max_predict_ms_per_row: float | None = setting(None, "Prefer models (and ensembles) predicting faster than this.",
                                                   flag="--max-predict-ms-per-row")
    memory_limit_mb: float | None = setting(None, "Skip a family whose estimated memory is above this (default: 80% of free memory).",
                                            flag="--memory-limit-mb")
    weight_col: str | None = setting(None, "Column of sample weights (used in training and validation scores).", flag="--weight-col")
    max_columns: int | None = setting(None, "Wide tables: keep this many feature columns, those most associated with the target on the "
                                            "training rows (default: about 25 per second of --time-limit, 100 to 2,000).",
                                      flag="--max-columns")
    cluster: str | None = setting(None, "Run on Ray: ray://HOST:PORT, HOST:PORT (the head's GCS port), auto, or local:N (a Ray with N CPUs "
                                        "started and stopped for this run); table trials (and bag folds) become Ray tasks, image/text networks and --task "
                                        "causal-lm train data-parallel (docs/distributed.md).",
                                  flag="--cluster")
    workers: int | None = setting(None, "With --cluster: tables, fits at once; image, text and causal-lm runs, data-parallel ranks "
                                        "(default: the cluster's CPUs). `resume --workers N` continues such a run on N ranks.", flag="--workers")
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
