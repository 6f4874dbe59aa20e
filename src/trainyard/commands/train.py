"""`trainyard train`: a table in, a registered model out, with live progress."""

from __future__ import annotations

from pathlib import Path

import typer

from trainyard.commands._common import console, fmt, print_json, split_list, table


def register(app: typer.Typer) -> None:
    app.command("train")(train)


def train(
    data: Path = typer.Argument(..., help="Table to learn from: .csv, .tsv, .parquet or .jsonl."),
    target: str = typer.Option(None, "--target", "-t", help="Column to predict (tables and texts)."),
    time_limit: float = typer.Option(None, "--time-limit", help="Seconds for the whole run (preset default: fast 30, balanced 60, best 300)."),
    name: str = typer.Option(None, "--name", "-n", help="Registry name for the model (default: the file name)."),
    preset: str = typer.Option("balanced", "--preset", "-p", help="fast, balanced or best."),
    task: str = typer.Option(None, "--task", help="binary, multiclass, regression (default: inferred), image-classification or text-classification."),
    metric: str = typer.Option(None, "--metric", help="Metric to optimise (default: roc_auc, accuracy or rmse)."),
    include: list[str] = typer.Option(None, "--include", help="Only these model families (comma-separated or repeated)."),
    exclude: list[str] = typer.Option(None, "--exclude", help="Leave out these model families."),
    ignore: list[str] = typer.Option(None, "--ignore", help="Columns to leave out."),
    categorical: list[str] = typer.Option(None, "--categorical", help="Columns to treat as categories."),
    seed: int = typer.Option(0, "--seed", help="Random seed (split, models)."),
    max_trials: int = typer.Option(None, "--max-trials", help="Stop after this many trials."),
    test_size: float = typer.Option(None, "--test-size", help="Share of rows held out for the final test (default 0.2)."),
    group_col: str = typer.Option(None, "--group-col", help="Keep each group of this column in one split."),
    time_col: str = typer.Option(None, "--time-col", help="Split by time on this column (train on the past)."),
    force: bool = typer.Option(False, "--force", help="Train even when the audit finds blocking problems."),
    sensitive: list[str] = typer.Option(None, "--sensitive", "-s", help="Sensitive columns: the audit reports their groups and the test evaluation reports fairness by them (comma-separated or repeated)."),
    class_weight: str = typer.Option(None, "--class-weight", help="auto (balanced when the smallest class is under 10%), balanced or none."),
    calibrate: str = typer.Option(None, "--calibrate", help="auto, sigmoid, isotonic or temperature: calibrate probabilities on the validation rows."),
    threshold_metric: str = typer.Option(None, "--threshold-metric", help="Binary: tune the decision threshold on validation rows for this metric (default f1)."),
    cost_fp: float = typer.Option(None, "--cost-fp", help="Binary: cost of a false positive (tune the threshold for the lowest cost)."),
    cost_fn: float = typer.Option(None, "--cost-fn", help="Binary: cost of a false negative."),
    learning_curve: bool = typer.Option(False, "--learning-curve", help="Add learning curves (score vs training rows) to the report."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    text_col: str = typer.Option(None, "--text-col", help="[neural] Column holding the text (text classification)."),
    model: str = typer.Option(None, "--model", help="[neural] cnn or mobilenetv2 (images); minilm or a Hugging Face model folder (text)."),
    lora: bool = typer.Option(None, "--lora/--full", help="[neural] Fine-tune with LoRA adapters instead of all weights."),
    lora_r: int = typer.Option(None, "--lora-r", help="[neural] LoRA rank (default 8)."),
    epochs: int = typer.Option(None, "--epochs", help="[neural] Passes over the training data."),
    batch_size: int = typer.Option(None, "--batch-size", help="[neural] Examples per batch."),
    lr: float = typer.Option(None, "--lr", help="[neural] Peak learning rate."),
    device: str = typer.Option(None, "--device", help="[neural] auto (CUDA when present), cpu or cuda."),
    precision: str = typer.Option(None, "--precision", help="[neural] auto, fp32 or bf16 (autocast)."),
    image_size: int = typer.Option(None, "--image-size", help="[neural] Resize images to this side (pixels)."),
    augment: bool = typer.Option(None, "--augment/--no-augment", help="[neural] Random flips and crops of training images."),
    width: int = typer.Option(None, "--width", help="[neural] Channels of the CNN's first stage."),
    max_length: int = typer.Option(None, "--max-length", help="[neural] Tokens kept per text."),
    checkpoint_every: int = typer.Option(None, "--checkpoint-every", help="[neural] Checkpoint every N optimizer steps (default 200)."),
) -> None:
    """Train models on a table, pick the best on validation data, test it once and register it.

    Neural tasks: `--task image-classification` on an image folder (one sub-folder per class), idx or .npz files;
    `--text-col COL` (text classification) on a CSV/JSONL; options marked [neural] apply to them."""
    from trainyard.training.deep import is_deep

    if is_deep(task, text_col, model):
        from trainyard.commands.deep import train_neural

        train_neural(data, as_json=as_json, task=task, target=target, text_col=text_col, model=model, name=name, seed=seed,
                     test_size=test_size, lora=lora, lora_r=lora_r, epochs=epochs, batch_size=batch_size, lr=lr, device=device,
                     precision=precision, image_size=image_size, augment=augment, width=width, max_length=max_length,
                     loop={"checkpoint_every": checkpoint_every} if checkpoint_every else None)
        return
    from trainyard import api

    with _Live(enabled=not as_json, time_limit=time_limit) as live:
        result = api.train(
            data, target, time_limit=time_limit, name=name, preset=preset, progress=live.update,
            task=task, metric=metric, include=split_list(include), exclude=split_list(exclude),
            ignore=split_list(ignore), categorical=split_list(categorical), seed=seed, max_trials=max_trials,
            test_size=test_size, group_col=group_col, time_col=time_col, force=force,
            sensitive=split_list(sensitive) or None, class_weight=class_weight,
            calibrate=calibrate, threshold_metric=threshold_metric, cost_fp=cost_fp, cost_fn=cost_fn, learning_curve=learning_curve or None,
        )
    if as_json:
        print_json({
            "run_id": result.run_id, "name": result.name, "version": result.version, "task": result.task,
            "metric": result.metric, "test": result.metrics, "baseline": result.baseline, "split": result.split,
            "leaderboard": result.leaderboard.reset_index(names="rank").to_dict(orient="records"),
            "evaluation": result.evaluation.to_dict() if result.evaluation else None, "model_card": str(result.card_dir) if result.card_dir else None,
        })
        return
    board = result.leaderboard
    console.print(table(f"Leaderboard (validation {result.metric})", ["rank", *board.columns],
                        [[i, *row] for i, row in zip(board.index, board.itertuples(index=False))]))
    from trainyard.commands.evaluate import metrics_table, print_findings

    console.print(metrics_table(f"Held-out test set ({result.split['test']} rows, scored once)", result.evaluation["metrics"]))
    print_findings(result.evaluation.data)
    console.print(f"Model card: {result.card_dir / 'model_card.html'}", highlight=False)
    console.print(f"Registered [bold]{result.name}@{result.version}[/] ({result.model.family}), run {result.run_id}. "
                  f"Test {result.metric} = {fmt(result.test_score)}.")


class _Live:
    """Rich progress: one line per stage, a bar over the time budget, a line per finished trial."""

    UNIT = "trials"

    def __init__(self, enabled: bool, time_limit: float | None = None):
        self.enabled = enabled
        self.time_limit = time_limit

    def __enter__(self):
        if self.enabled:
            from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} " + self.UNIT),
                                     TimeElapsedColumn(), console=console, transient=True)
            self.progress.__enter__()
            self.task = self.progress.add_task("starting", total=None)
        return self

    def update(self, kind: str, info: dict) -> None:
        if not self.enabled:
            return
        if kind == "stage":
            self.progress.update(self.task, description=info["message"])
        elif kind == "run":
            self.progress.update(self.task, total=len(info["families"]), description="searching")
            console.print(f"Run [bold]{info['run_id']}[/]: {info['task']} task, optimising {info['metric']}, trying {', '.join(info['families'])}")
        elif kind == "audit":
            report = info["report"]
            s = report.summary()
            console.print(f"Audit: [bold red]{s['blocking']} blocking[/], [yellow]{s['warning']} warning[/], {s['info']} info"
                          f" ({report.timings.get('total', 0):.1f}s)")
            from rich.markup import escape

            for f in [f for f in report.findings if f.severity != "info"][:8]:
                style = "bold red" if f.severity == "blocking" else "yellow"
                console.print(f"  [{style}]{f.severity}[/] " + escape((f"[{f.column}] " if f.column else "") + f.what), highlight=False)
        elif kind == "trial":
            t = info["trial"]
            self.progress.advance(self.task)
            status = f"val={fmt(t.val_score)}" if t.status == "ok" else f"[yellow]{t.status}[/]: {(t.message or '').splitlines()[0] if t.message else ''}"
            console.print(f"  trial {t.number}: {t.family:<14} {status}  ({fmt(t.fit_seconds, 1)}s)", highlight=False)

    def __exit__(self, *exc):
        if self.enabled:
            self.progress.__exit__(*exc)
        return False
