"""`trainyard evaluate` (any version on any labelled data) and `trainyard report` (the model card)."""

from __future__ import annotations

from pathlib import Path

import typer

from trainyard.commands._common import console, print_json, split_list, table
from trainyard.commands._results import metrics_table, print_findings
from trainyard.commands.lm import evaluate_lm, evaluate_reward
from trainyard.commands.rag import evaluate_index
from trainyard.commands.rl import evaluate_rl
from trainyard.errors import ConfigError
from trainyard.registry.workspace import Workspace


def register(app: typer.Typer) -> None:
    app.command("evaluate")(evaluate)
    app.command("report")(report)


def evaluate(
    ref: str = typer.Argument(..., help="Model: NAME (latest), NAME@VERSION or NAME@ALIAS."),
    data: Path = typer.Option(None, "--data", "-d", help="Labelled rows (with the model's target column); not for RL policies."),
    queries: Path = typer.Option(None, "--queries", help="Document indexes: JSONL of queries with relevant_paths or relevant_ids (see docs/rag.md)."),
    sensitive: list[str] = typer.Option(None, "--sensitive", "-s", help="Columns to report fairness by (comma-separated or repeated)."),
    slice_: list[str] = typer.Option(None, "--slice", help="A slice to report: a pandas query or column=value (repeatable)."),
    validation: Path = typer.Option(None, "--validation", help="Other labelled rows the model did not learn from: enables calibrator choice and threshold tuning."),
    learning_curve: bool = typer.Option(False, "--learning-curve", help="Also refit copies on growing shares of the data (slow)."),
    n_boot: int = typer.Option(1000, "--n-boot", help="Bootstrap resamples for the intervals."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap."),
    out: Path = typer.Option(None, "--output", "-o", help="Folder for report.html/.json/.md (default: the workspace's reports/NAME/vVERSION/evaluations/)."),
    as_json: bool = typer.Option(False, "--json", help="Print the whole report as JSON."),
    episodes: int = typer.Option(None, "--episodes", help="RL policies: held-out episodes to run (default 100)."),
) -> None:
    """Evaluate a registered model on labelled data: metrics with 95% intervals and baselines, calibration, errors, fairness."""
    from trainyard.evaluation.card import card_dir  # numpy: loaded when a command runs, not for --help

    from datetime import datetime, timezone

    from trainyard.api import load_with_meta
    from trainyard.evaluation.core import evaluate as run_evaluate
    from trainyard.serve.images import is_image_model

    ws = Workspace.resolve()
    model, meta = load_with_meta(ref, ws.home)
    if meta.get("kind") == "rag-index":  # recall@k, MRR, nDCG@10 by retrieval mode, answer support: trainyard.rag.evaluate
        return evaluate_index(ref, _required(queries, "--queries"), n_boot=n_boot, seed=seed, as_json=as_json)
    if meta.get("kind") == "rl-policy":  # episodes on held-out seeds beside a random policy: trainyard.rl
        return evaluate_rl(ref, episodes, as_json=as_json)
    data = _required(data, "--data")
    if is_image_model(model) and Path(data).is_dir():  # a labelled folder: one sub-folder per class
        return _evaluate_images(model, meta, data, as_json)
    if meta.get("kind") == "language-model":  # perplexity, accuracy, samples, before/after: trainyard.lm.evaluate
        return evaluate_lm(model, data, ref=ref, as_json=as_json)
    if meta.get("kind") == "reward-model":  # ranking of chosen/rejected pairs: trainyard.lm.reward
        return evaluate_reward(model, data, ref=ref, as_json=as_json)
    report_ = run_evaluate(model, data, split_list(sensitive), slices=list(slice_ or []), validation=validation, learning_curve=learning_curve,
                           n_boot=n_boot, seed=seed, _meta=meta)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    folder = out or card_dir(ws.home, meta["name"], meta["version"]) / "evaluations" / f"{Path(data).stem}-{stamp}"
    paths = report_.save(folder, "report")
    if as_json:
        print_json({**report_.to_dict(), "files": {k: str(v) for k, v in paths.items()}})
        return
    console.print(metrics_table(f"{meta['name']}@{meta['version']} on {data} ({report_['dataset']['rows']} rows)", report_["metrics"]))
    print_findings(report_.data)
    console.print(f"Report: {paths['html']} (also .json, .md)", highlight=False)


def _evaluate_images(model, meta: dict, folder: Path, as_json: bool) -> None:
    from trainyard.evaluation.images import evaluate_folder

    report_ = evaluate_folder(model, folder)
    if as_json:
        print_json(report_)
        return
    rows = [["accuracy", report_["accuracy"], report_["majority_baseline"]], ["log_loss", report_["log_loss"], None],
            *[[f"recall {c}", r, None] for c, r in report_["recall"].items()]]
    console.print(table(f"{meta['name']}@{meta['version']} on {folder} ({report_['images']} images)", ["metric", "value", "majority baseline"], rows))
    if report_["unknown_class_images"]:
        console.print(f"{report_['unknown_class_images']} images in folders that are not classes of this model were left out.")


def _required(value, flag: str):
    if value is None:
        raise ConfigError(f"This model needs {flag}.", f"pass {flag} FILE ({'labelled rows' if flag == '--data' else 'JSONL queries'}).")
    return value


def report(
    ref: str = typer.Argument(..., help="Model: NAME (latest), NAME@VERSION or NAME@ALIAS."),
    out: Path = typer.Option(None, "--output", "-o", help="Folder for model_card.html/.json/.md (default: the workspace's reports/NAME/vVERSION/)."),
    intended_use: str = typer.Option(None, "--intended-use", help="Text for the card's intended-use section."),
    as_json: bool = typer.Option(False, "--json", help="Print the card as JSON."),
) -> None:
    """Write the model card of a version (from its stored test evaluation): HTML that opens offline, JSON and Markdown."""
    from trainyard.evaluation.card import CARD_STEM, stored_evaluation, write_model_card  # numpy: loaded when a command runs, not for --help

    from trainyard.api import load_with_meta

    ws = Workspace.resolve()
    _, meta = load_with_meta(ref, ws.home)
    evaluation = stored_evaluation(ws, ref)
    folder = write_model_card(ws, meta["name"], meta["version"], evaluation, meta, directory=out, intended_use=intended_use)
    if as_json:
        print_json({"files": {ext: str(folder / f"{CARD_STEM}.{ext}") for ext in ("html", "json", "md")}})
        return
    console.print(f"Model card for [bold]{meta['name']}@{meta['version']}[/]: {folder / (CARD_STEM + '.html')} (also .json, .md)", highlight=False)
