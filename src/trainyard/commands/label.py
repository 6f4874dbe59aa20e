"""`trainyard label`: labelling projects with active learning (create, status, export, import, annotators, the page).

    trainyard label create tickets --data tickets.csv --text-col body --classes billing,bug,other
    trainyard label tickets                   # the labelling page of `trainyard ui`
"""

from __future__ import annotations

import inspect
from pathlib import Path

import typer
from typer.core import TyperGroup

from trainyard.commands._common import console, print_json, table
from trainyard.commands.options import given, parameters_of
from trainyard.errors import ConfigError
from trainyard.label.settings import LabelSettings
from trainyard.registry.workspace import Workspace

EXPORT_SUFFIX = {".jsonl": "jsonl", ".csv": "csv", ".json": "labelstudio"}


class ProjectOrCommand(TyperGroup):
    """`trainyard label NAME` opens the page: a first word that is no subcommand is a project name."""

    def resolve_command(self, ctx, args):
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["open", *args]
        return super().resolve_command(ctx, args)


label_app = typer.Typer(cls=ProjectOrCommand, help="Label data with active learning: `trainyard label NAME` opens the page.",
                        no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(label_app, name="label")


def _project(name: str):
    from trainyard.label.project import get_project

    ws = Workspace.resolve()
    if not ws.exists():
        raise ConfigError(f"There is no workspace at {ws.home}, so no project {name!r}.",
                          "create the project first: trainyard label create NAME --data FILE --classes A,B")
    return ws, get_project(ws.store, name)


def create(**values) -> None:
    """Create a labelling project from a table (rows), a table with --text-col (texts) or a folder of images."""
    from trainyard.label.project import create_project, parse_classes

    name, data = values.pop("name"), values.pop("data")
    own = {k: values.pop(k) for k in ("classes", "target", "text_col", "id_col")}
    settings = LabelSettings(**given(values))
    ws = Workspace.resolve()
    project = create_project(ws, name, data, classes=parse_classes(own["classes"]), target=own["target"],
                             text_col=own["text_col"], id_col=own["id_col"], settings=settings)
    status = _status(ws, project)
    console.print(f"Created labelling project [bold]{name}[/]: {status['items']:,} {project.kind} items, classes "
                  f"{', '.join(project.classes)}; {status['labelled']:,} come labelled. Label them: trainyard label {name}")


create.__signature__ = inspect.Signature([
    inspect.Parameter("name", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=str,
                      default=typer.Argument(..., help="Project name (letters, digits, _ . -).")),
    inspect.Parameter("data", inspect.Parameter.KEYWORD_ONLY, annotation=Path, default=typer.Option(
        ..., "--data", help="A table (.csv, .tsv, .parquet, .jsonl) or a folder of images (class sub-folders are given labels).")),
    inspect.Parameter("classes", inspect.Parameter.KEYWORD_ONLY, annotation=str, default=typer.Option(
        None, "--classes", help="The classes, comma-separated (default: the values of --target).")),
    inspect.Parameter("target", inspect.Parameter.KEYWORD_ONLY, annotation=str, default=typer.Option(
        None, "--target", help="Column holding labels the data already has (empty cells are to be labelled).")),
    inspect.Parameter("text_col", inspect.Parameter.KEYWORD_ONLY, annotation=str, default=typer.Option(
        None, "--text-col", help="Column holding the text to label (a text project).")),
    inspect.Parameter("id_col", inspect.Parameter.KEYWORD_ONLY, annotation=str, default=typer.Option(
        None, "--id-col", help="Column naming the rows (default: a column named id or row_id, else the row number).")),
    *parameters_of(LabelSettings),
])
label_app.command("create")(create)


def _status(ws, project) -> dict:
    from trainyard.label.status import project_status

    return project_status(ws.store, project)


@label_app.command("status")
def status(name: str = typer.Argument(..., help="Project name."),
           as_json: bool = typer.Option(False, "--json", help="Print the status as JSON.")) -> None:
    """Counts, classes, annotators and their agreement, the current model's held-out accuracy, labels still needed."""
    ws, project = _project(name)
    s = _status(ws, project)
    if as_json:
        print_json(s)
        return
    console.print(f"[bold]{name}[/] ({s['kind']}, queue {s['settings']['queue']}): {s['labelled']:,}/{s['items']:,} labelled "
                  f"({s['by_annotators']:,} by annotators, {s['given']:,} given), {s['disagreements']} disagreements, "
                  f"{s['suspects']} suspected label errors")
    console.print(table("classes", ["class", "labelled"], [[c, s["class_counts"].get(c, 0)] for c in s["classes"]]))
    if s["annotators"]:
        console.print(table("annotators", ["annotator", "labels"], [[a, n] for a, n in sorted(s["annotators"].items())]))
    ag = s["agreement"]
    if ag["items"]:
        console.print(f"agreement on {ag['items']} items labelled twice: Cohen's kappa {_f(ag['cohen_kappa'])}, Fleiss' kappa "
                      f"{_f(ag['fleiss_kappa'])}; per class " + ", ".join(f"{c} {_f(k)}" for c, k in ag["per_class"].items()))
    if s["accuracy"] is None:
        console.print("No model yet: it is trained once two classes have labels (every "
                      f"{s['settings']['retrain_every']} labels).")
    else:
        needed = s["labels_needed"]
        console.print(f"held-out accuracy {s['accuracy']:.3f} on {s['curve'][-1]['labels']:,} labels (cross-validated); "
                      f"to reach {s['settings']['target_accuracy']:.2f}: "
                      + ("reached" if needed == 0 else "not yet estimable" if needed is None else f"about {needed:,} more labels"))


def _f(value) -> str:
    return "-" if value is None else f"{value:.3f}"


@label_app.command("export")
def export(name: str = typer.Argument(..., help="Project name."),
           output: Path = typer.Option(..., "--output", "-o", help="File to write (.jsonl, .csv, or .json for Label Studio)."),
           fmt: str = typer.Option(None, "--format", help="jsonl, csv or labelstudio (default: from the file's suffix).")) -> None:
    """Write the labelled items with every label (who, when, queue, item version, comment)."""
    from trainyard.label.formats import FORMATS, write_export

    fmt = fmt or EXPORT_SUFFIX.get(output.suffix.lower())
    if fmt not in FORMATS:
        raise ConfigError(f"Cannot tell the export format{' ' + repr(fmt) if fmt else ''} of {output.name}.",
                          "give --format jsonl, csv or labelstudio, or name the file .jsonl, .csv or .json.")
    if not output.parent.resolve().is_dir():
        raise ConfigError(f"The folder of {output} does not exist.", "create it first, or write the export elsewhere.")
    ws, project = _project(name)
    n = write_export(ws.store, project, output, fmt)
    console.print(f"Wrote {n:,} labelled items of {name} to {output} ({fmt}).")


@label_app.command("import")
def import_(name: str = typer.Argument(..., help="Project name."),
            file: Path = typer.Argument(..., help="CSV, JSONL, or Label Studio JSON (tasks with annotations)."),
            id_col: str = typer.Option(None, "--id-col", help="Field naming the item (default: the project's id column, id or row_id; "
                                                             "else items are matched by content)."),
            label_col: str = typer.Option(None, "--label-col", help="Field holding the label in CSV/JSONL (default: the project's label column, or label)."),
            annotator: str = typer.Option("import", "--annotator", help="Who the imported labels are recorded as (Label Studio's completed_by wins).")) -> None:
    """Import labels; nothing is written unless every record matches an item and every label is a class."""
    from trainyard.label.formats import import_labels

    ws, project = _project(name)
    out = import_labels(ws.store, project, file, id_col=id_col, label_col=label_col, annotator=annotator)
    console.print(f"Imported {out['labels']:,} labels on {out['items']:,} items from {out['records']:,} records into {name}.")


@label_app.command("annotator")
def annotator(name: str = typer.Argument(..., help="Project name."),
              who: str = typer.Argument(..., help="The annotator's name.")) -> None:
    """Give an annotator a token of their own (printed once; the page identifies them by it)."""
    from trainyard.label.annotators import add_annotator

    ws, project = _project(name)
    token = add_annotator(ws.store, project, who)
    console.print(f"Token for {who} on {name} (shown once): [bold]{token}[/]")
    console.print(f"They open /label/{name}?annotator={token} on the dashboard (trainyard label {name}).", soft_wrap=True)


@label_app.command("retrain")
def retrain(name: str = typer.Argument(..., help="Project name.")) -> None:
    """Train the suggestion model on the labels so far and rescore the items now (the page does this every K labels)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from trainyard.label.learner import run_round

    ws, project = _project(name)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console,
                  transient=True) as bar:
        task = bar.add_task("features (first round only), then the model", total=None)
        out = run_round(ws, project.name, progress=lambda done, total: bar.update(task, completed=done, total=total))
    acc = "-" if out["accuracy"] is None else f"{out['accuracy']:.3f}"
    console.print(f"Retrained on {out['labels']:,} labels: held-out accuracy {acc}, {out['suspects']} suspected label errors.")


@label_app.command("open")
def open_page(name: str = typer.Argument(..., help="Project name."),
              port: int = typer.Option(8080, "--port", help="Port to listen on."),
              host: str = typer.Option("127.0.0.1", "--host", help="Address to bind; anything but loopback requires a token."),
              token_file: Path = typer.Option(None, "--token-file", help="File holding the dashboard's access token.")) -> None:
    """Serve the labelling page of `trainyard ui` for this project."""
    from trainyard.commands.ui import serve_dashboard

    _project(name)
    serve_dashboard(port, host, token_file, path=f"/label/{name}")
