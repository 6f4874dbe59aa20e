"""Neural training in the CLI: `trainyard train images/ --task image-classification`, text fine-tuning, `trainyard resume`.

`trainyard train` hands neural tasks here (see commands/train.py). While the
loop runs, a rich progress bar shows the step, the latest loss, a sparkline of
the recent losses and the last validation metrics; each evaluation prints a line.
"""

from __future__ import annotations

import typer

from trainyard.commands._common import console, fmt, print_json, table
from trainyard.commands.train import _Live

SPARK = "▁▂▃▄▅▆▇█"


def register(app: typer.Typer) -> None:
    app.command("resume")(resume)


def resume(
    run_id: str = typer.Argument(..., help="The run to continue (see `trainyard runs`), or 'last'."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Continue a killed or interrupted run: a neural or language-model run from its last checkpoint (it ends as the
    uninterrupted run would), a table search from its recorded trials (reading its data file again)."""
    from trainyard.training.deep import resume as resume_run
    from trainyard.workspace import Workspace

    run = Workspace.resolve().store.get_run(run_id)
    if run["kind"] == "rl":
        from trainyard.commands.rl import resume_rl

        resume_rl(run["id"], as_json=as_json)
        return
    if run["kind"] == "language-model":
        from trainyard.commands.lm import resume_language

        resume_language(run_id, as_json=as_json)
        return
    if run["kind"] != "deep":
        from trainyard.commands.train import train_table

        train_table(_table_source(run), None, as_json=as_json, resume=run["id"])
        return

    with DeepLive(enabled=not as_json) as live:
        result = resume_run(run_id, progress=live.update)
    show_result(result, as_json)


def _table_source(run: dict) -> str:
    """The data file a table run was trained on, which its resume reads again (its fingerprint is checked there)."""
    from pathlib import Path

    from trainyard.errors import ConfigError, NotFoundError

    source = run.get("data_source") or ""
    if source in ("", "<DataFrame>"):
        what = "was trained on an in-memory DataFrame" if source else "recorded no data file"
        raise ConfigError(f"Run {run['id']} {what}, so there is nothing to read again.",
                          f"pass the same data: `trainyard train DATA --resume {run['id']}` (trainyard.train(df, resume='{run['id']}') in Python).")
    if not Path(source).exists():
        raise NotFoundError(f"Run {run['id']}'s data file {source} is gone.",
                            f"put it back at that path, or pass the same data: `trainyard train DATA --resume {run['id']}`.")
    return source


def train_neural(data, *, as_json: bool = False, **settings) -> None:
    """What `trainyard train` runs for --task image-classification / text-classification / text-regression."""
    from trainyard.training.deep import train_deep

    with DeepLive(enabled=not as_json) as live:
        result = train_deep(data, progress=live.update, **settings)
    show_result(result, as_json)


def show_result(result, as_json: bool) -> None:
    if as_json:
        print_json({"run_id": result.run_id, "name": result.name, "version": result.version, "task": result.task,
                    "family": result.family, "metric": result.metric, "test": result.metrics, "split": result.split,
                    "notes": result.notes, "history": result.history})
        return
    console.print(table(f"Held-out test set ({result.split['test']} examples, scored once)", ["metric", "value"],
                        [[k, v] for k, v in result.metrics.items()]))
    console.print(f"Registered [bold]{result.name}@{result.version}[/] ({result.family}), run {result.run_id}. "
                  f"Test {result.metric} = {fmt(result.test_score)}.")


def sparkline(values: list[float], width: int = 30) -> str:
    values = values[-width:]
    if not values:
        return ""
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0
    return "".join(SPARK[min(len(SPARK) - 1, int((v - lo) / span * (len(SPARK) - 1)))] for v in values)


class DeepLive(_Live):
    """A progress bar over optimizer steps with the latest loss, a loss sparkline and the last validation scores."""

    def __init__(self, enabled: bool):
        super().__init__(enabled)
        self.losses: list[float] = []
        self.val = ""

    def columns(self) -> list:
        from rich.progress import BarColumn, SpinnerColumn, TextColumn, TimeElapsedColumn

        return [SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} steps"), TimeElapsedColumn()]

    def update(self, kind: str, info: dict) -> None:
        if not self.enabled:
            return
        if kind == "run":
            console.print(f"Run [bold]{info['run_id']}[/]: {info['task']} with {info['family']}, split {info['sizes']}")
        elif kind == "step":
            self.losses.append(info["loss"])
            self.progress.update(self.task, completed=info["step"], total=info["total"],
                                 description=f"epoch {info['epoch'] + 1} loss {info['loss']:.4f} {sparkline(self.losses)} {self.val}")
        elif kind == "eval":
            m = info["metrics"]
            self.val = " ".join(f"{k} {v:.4f}" for k, v in m.items())
            mark = " [green]best[/]" if info["improved"] else ""
            console.print(f"  step {info['step']:>6} epoch {info['epoch'] + 1}: {self.val}{mark}", highlight=False)
        elif kind == "note":
            from rich.markup import escape

            console.print(f"  [yellow]note[/]: {escape(info['message'])}", highlight=False)
        elif kind == "rollback":
            console.print(f"  [yellow]rollback[/]: {info['message']}", highlight=False)
        else:
            super().update(kind, info)
