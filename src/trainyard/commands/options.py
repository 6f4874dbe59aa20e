"""The options of `trainyard train`, made from the config objects' fields (each declared once, help included), and
the one config object a command line becomes.

Groups, in the order `--help` shows them: the run and table options (TrainConfig), the training loop's
(LoopConfig, marked [loop]), the image and text networks' (NeuralSettings, [neural]) and the language models'
(LMSettings, [lm]). A flag that does not apply to the kind of run asked for is refused (exit 2), never ignored.
"""

from __future__ import annotations

import inspect
from dataclasses import fields

import typer

from trainyard.commands._common import parse_duration, split_list, unescape
from trainyard.config import TrainConfig, build_config
from trainyard.engine.config import LoopConfig
from trainyard.errors import ConfigError
from trainyard.lm.settings import LMSettings
from trainyard.options import cli_fields
from trainyard.rag.settings import EmbeddingSettings
from trainyard.rl.config import RLSettings, parse_hparams, parse_steps
from trainyard.runs.settings import ESTIMATOR_FIELDS, NeuralSettings

GROUPS = (("", TrainConfig), ("loop", LoopConfig), ("neural", NeuralSettings), ("lm", LMSettings), ("rl", RLSettings))
TYPES = {"int": int, "float": float, "str": str, "bool": bool, "list": list[str], "duration": str}
RUN_FIELDS = ("name", "task", "seed", "time_limit")  # what every kind of run takes from TrainConfig's options
KIND_LABEL = {"tabular": "table", "deep": "image and text (neural)", "language-model": "language-model",
              "embedding": "encoder fine-tuning (--task embedding)", "rl": "reinforcement-learning (--task rl)"}


def option_fields() -> list:
    """(group label, field) for every option, each flag once (the first group that declares it)."""
    seen, out = set(), []
    for label, cls in GROUPS:
        for f in cli_fields(cls):
            if f.name not in seen:
                seen.add(f.name)
                out.append((label, f))
    return out


def _cli_type(f) -> type:
    kind = f.metadata.get("kind")
    if kind:
        return TYPES[kind]
    text = str(f.type)
    for name in ("bool", "int", "float"):
        if text.startswith(name):
            return TYPES[name]
    return str


def parameters(names: tuple[str, ...] | None = None) -> list[inspect.Parameter]:
    """The Typer parameters of the options (or of those `names`): every default None, so the command sees which were given."""
    return [_parameter(label, f) for label, f in option_fields() if names is None or f.name in names]


def parameters_of(cls) -> list[inspect.Parameter]:
    """The Typer parameters of one config class's settings (e.g. `trainyard label create`'s LabelSettings)."""
    return [_parameter("", f) for f in cli_fields(cls)]


def _parameter(label: str, f) -> inspect.Parameter:
    flags = [f.metadata["flag"]] + ([f.metadata["short"]] if f.metadata.get("short") else [])
    typ = _cli_type(f)
    plain_switch = typ is bool and "/" not in f.metadata["flag"]
    option = typer.Option(None, *flags, help=(f"\\[{label}] " if label else "") + f.metadata["help"], is_flag=plain_switch or None,
                          show_default=False)
    return inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=typ)


def with_options(function, leading: list[inspect.Parameter], names: tuple[str, ...] | None = None):
    """`function(**values)` as a Typer command whose signature is `leading` followed by the options (or those `names`)."""
    function.__signature__ = inspect.Signature([*leading, *parameters(names)])
    return function


def given(values: dict) -> dict:
    """The options the command line set (Typer gives None, or an empty list, for the others)."""
    return {k: v for k, v in values.items() if v is not None and v != []}


def check_applies(kind: str, values: dict) -> None:
    """Refuse an option that the kind of run does not use (it would otherwise be silently ignored)."""
    allowed = _allowed(kind)
    flags = {f.name: f.metadata["flag"].split("/")[0] for _, f in option_fields()}
    for name in values:
        if name in flags and name not in allowed:
            raise ConfigError(f"{flags[name]} does not apply to {KIND_LABEL[kind]} runs.",
                              "leave it out; `trainyard train --help` marks the options of each kind ([loop], [neural], [lm]).")


def _allowed(kind: str) -> set[str]:
    table = {f.name for f in cli_fields(TrainConfig)}
    loop = {f.name for f in cli_fields(LoopConfig)}
    if kind == "tabular":
        return table
    if kind == "deep":
        return {*RUN_FIELDS, "target", "test_size", "cluster", "workers", *loop, *(f.name for f in cli_fields(NeuralSettings))}
    if kind == "embedding":
        return {"task"} | {f.name for f in fields(EmbeddingSettings)}
    if kind == "rl":  # --max-trials tunes hyperparameters; --lr and --batch-size are hyperparameters of those names
        return {*RUN_FIELDS, "max_trials", "checkpoint_every", "lr", "batch_size", *(f.name for f in cli_fields(RLSettings))}
    return {*RUN_FIELDS, *loop, "lora", "lora_r", "batch_size", "cluster", "workers", *(f.name for f in cli_fields(LMSettings))}


def table_config(values: dict) -> TrainConfig:
    """A table run's TrainConfig: the preset, then every option given."""
    own = {f.name for f in cli_fields(TrainConfig)}
    settings = {k: (tuple(split_list(v)) if isinstance(v, list) else v) for k, v in values.items() if k in own}
    if "time_limit" in settings:
        settings["time_limit"] = parse_duration(settings["time_limit"])
    target, preset = settings.pop("target", None), settings.pop("preset", "balanced")
    if target is None:
        raise ConfigError("No target column given.", "name the column to predict with --target COLUMN.")
    only_trials = "time_limit" not in settings and settings.get("max_trials") is not None
    return build_config(target, preset, trial_budget_only=only_trials, **settings)


def neural_settings(data, values: dict) -> NeuralSettings:
    """An image or text run's settings: the run's options, its own, and the loop's (a time limit re-plans the schedule)."""
    loop_names = {f.name for f in cli_fields(LoopConfig)}
    loop = {k: v for k, v in values.items() if k in loop_names}
    if "time_limit" in values:
        loop.update(time_limit=parse_duration(values["time_limit"]), replan="max_steps" not in values)
    own = {k: values[k] for k in ("task", "target", "name", "seed", "test_size", "text_col", "model", "cluster", "workers", *ESTIMATOR_FIELDS)
           if k in values}
    return NeuralSettings(str(data), **own, loop=loop)


def embedding_settings(values: dict) -> EmbeddingSettings:
    """An encoder fine-tuning run's settings: the options it has fields for."""
    names = {f.name for f in fields(EmbeddingSettings)}
    return EmbeddingSettings(**{k: v for k, v in values.items() if k in names})


def rl_settings(values: dict) -> RLSettings:
    """A reinforcement-learning run's settings (--timesteps 100k, --hparam KEY=VALUE, --lr/--batch-size as hyperparameters)."""
    if "env" not in values:
        raise ConfigError("--task rl needs an environment.", "pass --env CartPole-v1 (a Gymnasium id) or --env mypkg.envs:MyEnv.")
    hparams = {**{k: values[k] for k in ("lr", "batch_size") if k in values}, **parse_hparams(values.get("hparams"))}
    own = {k: values[k] for k in ("env", "name", "seed", "seeds", "checkpoint_every", "keep_best") if k in values}
    return RLSettings(**own, algo=values.get("algo", "ppo").lower(), timesteps=parse_steps(values.get("timesteps")),
                      time_limit=parse_duration(values["time_limit"]) if "time_limit" in values else None,
                      hparams=hparams, tune_trials=values.get("max_trials"))


def lm_settings(values: dict) -> LMSettings:
    """A language-model run's settings: the fields it has by name, the other loop options in its `loop`."""
    names = {f.name for f in fields(LMSettings)}
    loop_names = {f.name for f in cli_fields(LoopConfig)}
    own = {k: v for k, v in values.items() if k in names}
    if "time_limit" in own:
        own["time_limit"] = parse_duration(own["time_limit"])
    if "separator" in own:
        own["separator"] = unescape(own["separator"])
    loop = {k: v for k, v in values.items() if k in loop_names and k not in names}
    return LMSettings.from_dict({**own, **({"loop": loop} if loop else {})})
