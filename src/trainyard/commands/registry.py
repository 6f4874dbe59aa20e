"""`trainyard models`, `runs`, `families`, `predict`: reading the workspace and using its models."""

from __future__ import annotations

from pathlib import Path

import typer

from trainyard.commands._common import console, err_console, print_json, table
from trainyard.commands.rl import is_policy, predict_rl
from trainyard.commands.versions import show_model
from trainyard.errors import NotFoundError
from trainyard.registry.workspace import Workspace


def register(app: typer.Typer) -> None:
    app.command("models")(models)
    app.command("runs")(runs)
    app.command("families")(families)
    app.command("predict")(predict)


def models(
    name: str = typer.Argument(None, help="Only the versions of this model."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Model versions in the registry with their test metric; with NAME: aliases, tags, metrics and lineage."""
    ws = Workspace.resolve()
    if name and ws.exists():
        show_model(name, as_json)
        return
    if name:
        raise NotFoundError(f"No model named '{name}': there is no workspace at {ws.home}.",
                            "pass --workspace DIR (or set TRAINYARD_HOME) to the workspace you trained in.")
    rows = ws.store.list_models() if ws.exists() else []
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print("No models yet. Train one with [bold]trainyard train DATA --target COLUMN[/].")
        return
    console.print(table("Models", ["name", "version", "aliases", "family", "task", "test metric", "score", "run", "created"],
                        [[r["name"], r["version"], ",".join(r["aliases"]), r["family"], r["task"], r["metric"], r["test_score"], r["run_id"], r["created_at"]] for r in rows]))


def runs(
    limit: int = typer.Option(50, "--limit", help="How many of the latest runs."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Runs with their status, duration and best validation score."""
    ws = Workspace.resolve()
    rows = ws.store.list_runs(limit=limit) if ws.exists() else []
    for r in rows:
        end = r["finished_at"] or r["updated_at"]
        r["duration_s"] = round((end - r["created_at"]).total_seconds(), 1) if end and r["created_at"] else None
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print("No runs yet. Start one with [bold]trainyard train DATA --target COLUMN[/].")
        return
    status_style = {"finished": "green", "running": "cyan", "failed": "red", "interrupted": "yellow"}
    tab = table("Runs", ["run", "name", "status", "task", "metric", "best val", "best family", "model", "duration s", "started"], [])
    for r in rows:
        style = status_style.get(r["status"], "")
        tab.add_row(r["id"], r["name"], f"[{style}]{r['status']}[/]" if style else r["status"], r["task"] or "-", r["metric"] or "-",
                    "-" if r["best_score"] is None else f"{r['best_score']:.4f}", r["best_family"] or "-",
                    f"{r['name']}@{r['model_version']}" if r["model_version"] else "-", "-" if r["duration_s"] is None else f"{r['duration_s']:.1f}",
                    r["created_at"].strftime("%Y-%m-%d %H:%M:%S"))
    console.print(tab)


def families(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Model families trainyard can train, and whether their packages are installed."""
    from trainyard.models.families import all_families

    rows = [{"name": f.name, "tasks": sorted(t.value for t in f.tasks), "preprocessing": f.prep, "available": f.available(),
             "requires": list(f.requires), "description": f.description} for f in all_families().values()]
    if as_json:
        print_json(rows)
        return
    console.print(table("Model families", ["name", "tasks", "input", "available", "description"],
                        [[r["name"], ",".join(r["tasks"]), r["preprocessing"], "yes" if r["available"] else "no (install " + ",".join(r["requires"]) + ")", r["description"]] for r in rows]))


def predict(
    model: str = typer.Argument(..., help="NAME (latest version), NAME@VERSION or NAME@ALIAS."),
    data: Path = typer.Argument(..., help="Rows to score: .csv, .tsv, .parquet or .jsonl; for an image model an image or a folder of images."),
    output: Path = typer.Option(None, "--output", "-o", help="Where to write the predictions (.csv, .parquet or .jsonl); default: print the first 50."),
    keep_columns: bool = typer.Option(True, "--keep-columns/--only-predictions", help="Write the input columns too."),
    chunk_rows: int = typer.Option(100_000, "--chunk-rows", help="Rows read, scored and written at a time (memory stays bounded by this)."),
) -> None:
    """Score a file with a registered model, streaming it in chunks (files of any size)."""
    import pandas as pd
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from trainyard import api
    from trainyard.data.conform import merge
    from trainyard.data.load import load_table
    from trainyard.serve.batch import predict_file, score_frame
    from trainyard.serve.images import is_image_model

    if is_policy(model):  # a reinforcement-learning policy: actions for observations
        return predict_rl(model, data, output)
    loaded = api.load(model)
    if is_image_model(loaded):  # an image file or a folder of images: path, class, probabilities
        return _predict_images(loaded, data, output)
    unseen: dict = {}
    if output is None:
        X = load_table(data, nrows=50)
        scored, found = score_frame(loaded, X)
        console.print((pd.concat([X, scored], axis=1) if keep_columns else scored).to_string())
        console.print("(first 50 rows at most; use -o FILE to score the whole file)")
        warn_unseen(found)
        return
    columns = [TextColumn("[bold]scoring"), BarColumn(), TaskProgressColumn(), TextColumn("{task.fields[rows]} rows"), TimeElapsedColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("scoring", total=None, rows=0)

        def on_progress(rows, total_rows, done_bytes, total_bytes):
            if total_rows is not None:
                bar.update(task, completed=rows, total=total_rows, rows=f"{rows:,}")
            else:
                bar.update(task, completed=done_bytes, total=total_bytes, rows=f"{rows:,}")

        n = predict_file(loaded, data, output, chunk_rows=chunk_rows, keep_columns=keep_columns, on_progress=on_progress,
                         on_unseen=lambda found: merge(unseen, found))
    console.print(f"Wrote {n:,} predictions to {output}.")
    warn_unseen(list(unseen.values()))


def warn_unseen(found) -> None:
    """Values the model never saw in training: scored, but said (as the server's validation would refuse them)."""
    from trainyard.data.conform import describe

    if found:
        err_console.print("[yellow]warning:[/] some rows hold values the model never saw in training; their predictions "
                          "are extrapolations:", highlight=False)
        for line in describe(found):
            err_console.print(f"  {line}", highlight=False)


def _predict_images(model, data: Path, output: Path | None) -> None:
    from trainyard.data.images import image_files
    from trainyard.serve.images import predict_images, write_predictions

    files = image_files(data)
    frame = predict_images(model, files if output is not None else files[:50])
    if output is None:
        console.print(frame.to_string(index=False))
        console.print(f"(first 50 of {len(files)} images at most; use -o FILE to score them all)")
        return
    write_predictions(frame, output)
    console.print(f"Wrote {len(frame):,} predictions to {output}.")
