"""`trainyard train` and `trainyard resume`: data in, a registered model out, with live progress (every kind of run)."""

from __future__ import annotations

import inspect
from pathlib import Path

import typer

from trainyard.commands._common import process_started
from trainyard.commands._live import live_for
from trainyard.commands._results import show_result
from trainyard.errors import ConfigError
from trainyard.label import is_label_source
from trainyard.registry.workspace import Workspace
from trainyard.runs.settings import kind_of
from trainyard.commands.options import (
    check_applies,
    embedding_settings,
    given,
    lm_settings,
    neural_settings,
    rl_settings,
    table_config,
    with_options,
)


def register(app: typer.Typer) -> None:
    app.command("train")(train)
    app.command("resume")(resume)


def train(**values) -> None:
    """Train models on a table, pick the best on validation data, test it once and register it.

    Neural tasks: `--task image-classification` on an image folder (one sub-folder per class), idx or .npz files;
    `--text-col COL` (text classification) on a CSV/JSONL; options marked \\[neural] apply to them.

    Language models: `--task causal-lm` pre-trains on a corpus, `--task sft --base lm@2` instruction-tunes on prompt/response
    JSONL, `--task preference --base lm@3` runs DPO on prompt/chosen/rejected JSONL, `--task reward --base lm@3` trains a
    reward model on the same pairs and `--task preference --method rloo --reward-model rm@1` a policy against it; options marked \\[lm] and the
    \\[neural] ones apply (--lora, --epochs, --batch-size, --lr, ...).

    Retrieval encoders: `--task embedding --base minilm` fine-tunes an encoder on (query, passage) JSONL pairs.

    Reinforcement learning: `--task rl --env CartPole-v1 --algo ppo|dqn --timesteps 100k` (no DATA); options marked \\[rl]."""
    from trainyard import api  # pandas and scikit-learn: loaded when a run starts, not for --help

    data, as_json, resume_ref = values.pop("data"), values.pop("as_json"), values.pop("resume")
    values = given(values)
    if is_label_source(data):  # a labelling project: its labelled items, the label column as the target
        data = label_training_data(data, values)
    kind = kind_of(values.get("task"), values.get("text_col"), values.get("model"))
    check_applies(kind, values)
    if data is None and kind != "rl":
        raise ConfigError("No data given.", "pass the file or folder to learn from: trainyard train DATA ... (only --task rl needs none).")
    if kind == "rl":
        settings = rl_settings(values)
    elif kind == "embedding":
        settings = embedding_settings(values)
    elif kind == "language-model":
        settings = lm_settings(values)
    elif kind == "deep":
        settings = neural_settings(data, values)
    else:
        settings = table_config(values)
    limit = getattr(settings, "time_limit", None) if kind == "tabular" and "time_limit" in values else None
    with live_for(kind, enabled=not as_json, time_limit=limit) as live:
        result = api.run(data, settings, resume=resume_ref, progress=live.update, clock_started=process_started())
    show_result(result, as_json)


def label_training_data(source, values: dict):
    """`label:NAME`'s items as a table (target: the project's label column) or an image folder (image classification)."""
    from trainyard.label.training import training_input  # pandas and the store: loaded when a run starts, not for --help

    project, data = training_input(Workspace.resolve(), source)
    values.setdefault("name", project.name)
    if project.kind == "image":
        values.setdefault("task", "image-classification")
    else:
        values.setdefault("target", project.label_column)
    return data


with_options(train, [
    inspect.Parameter("data", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Path, default=typer.Argument(
        None, help="Table to learn from: .csv, .tsv, .parquet or .jsonl (images: a folder or idx/npz; language models: a corpus "
                   "file or folder, or JSONL; label:NAME, a labelling project; --task rl: none, it learns from --env).")),
    inspect.Parameter("resume", inspect.Parameter.KEYWORD_ONLY, annotation=str, default=typer.Option(
        None, "--resume", help="Continue an interrupted table run (RUN_ID or 'last') from its recorded trials.")),
    inspect.Parameter("as_json", inspect.Parameter.KEYWORD_ONLY, annotation=bool, default=typer.Option(
        False, "--json", is_flag=True, help="Print the result as JSON.")),
])


def resume(run_id: str, as_json: bool = False, workers: int | None = None) -> None:
    """Continue a killed or interrupted run: a neural or language-model run from its last checkpoint (it ends as the
    uninterrupted run would), a table search from its recorded trials (reading its data file again). A data-parallel
    run (image, text, causal-lm) may continue on a different number of --workers."""
    from trainyard import api

    run = Workspace.resolve().store.get_run(run_id)
    with live_for(run["kind"], enabled=not as_json) as live:
        result = api.resume(run["id"], progress=live.update, clock_started=process_started(), workers=workers)
    show_result(result, as_json)


with_options(resume, [
    inspect.Parameter("run_id", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=str, default=typer.Argument(
        ..., help="The run to continue (see `trainyard runs`), or 'last'.")),
    inspect.Parameter("as_json", inspect.Parameter.KEYWORD_ONLY, annotation=bool, default=typer.Option(
        False, "--json", is_flag=True, help="Print the result as JSON.")),
], names=("workers",))
