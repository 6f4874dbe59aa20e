"""`trainyard audit`: ranked findings about a table, audit.json and a self-contained audit.html.

Exit codes (so the command can gate a pipeline): 0 no finding at the --fail-on level, 1 at least one
(by default: a blocking finding), 2 a user error (missing file, unknown column, bad flag).
"""

from __future__ import annotations

from pathlib import Path

import typer

from trainyard.commands._common import console, err_console, print_json, split_list
from trainyard.errors import ConfigError

STYLE = {"blocking": "bold red", "warning": "yellow", "info": "cyan"}
FAIL_ON = ("blocking", "warning", "never")


def register(app: typer.Typer) -> None:
    app.command("audit")(audit)


def audit(
    data: Path = typer.Argument(..., help="Table to audit: .csv, .tsv, .parquet or .jsonl."),
    target: str = typer.Option(None, "--target", "-t", help="Column to predict (enables leakage, balance and label checks)."),
    sensitive: list[str] = typer.Option(None, "--sensitive", help="Sensitive columns to count and compare (comma-separated or repeated)."),
    time_col: str = typer.Option(None, "--time-col", help="Time column (left out of feature checks; shift by time is expected)."),
    group_col: str = typer.Option(None, "--group-col", help="Group/entity key (left out of feature checks)."),
    test: Path = typer.Option(None, "--test", help="A test table to check against DATA: shared rows (contamination) and shift."),
    split_col: str = typer.Option(None, "--split-col", help="Column saying which split each row is in (train/test/...): shared rows and shift between them."),
    task: str = typer.Option(None, "--task", help="binary, multiclass or regression (default: inferred)."),
    ignore: list[str] = typer.Option(None, "--ignore", help="Columns to leave out of the feature checks."),
    categorical: list[str] = typer.Option(None, "--categorical", help="Columns to treat as categories."),
    output: Path = typer.Option(Path("."), "--output", "-o", help="Directory for audit.json and audit.html."),
    no_label_noise: bool = typer.Option(False, "--no-label-noise", help="Skip the label-noise check (it fits a small model)."),
    fail_on: str = typer.Option("blocking", "--fail-on", help="Exit 1 when a finding of this severity exists: blocking, warning or never."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON instead of a table."),
) -> None:
    """Audit a table: missing values, duplicates, leakage, label noise, outliers, types, groups. Exit 1 on blocking findings."""
    from trainyard.data.audit import audit as run_audit

    if fail_on not in FAIL_ON:
        raise ConfigError(f"'{fail_on}' is not a --fail-on level.", "use blocking, warning or never.")
    roles = {c: "ignore" for c in split_list(ignore)}
    roles.update({c: "categorical" for c in split_list(categorical)})
    with err_console.status("auditing", spinner="dots") if not as_json else _Nothing():
        report = run_audit(data, target, split_list(sensitive), time_col, group_col, task=task, roles=roles or None,
                           test=test, split_col=split_col, label_noise=not no_label_noise)
    paths = report.save(output)
    if as_json:
        print_json({**report.to_dict(plots=False), "files": {k: str(v) for k, v in paths.items()}})
    else:
        print_report(report)
        console.print(f"Wrote {paths['json']} and {paths['html']}.")
    levels = {"blocking": ("blocking",), "warning": ("blocking", "warning"), "never": ()}[fail_on]
    if any(f.severity in levels for f in report.findings):
        raise typer.Exit(1)


def print_report(report, limit: int | None = None) -> None:
    from rich.markup import escape
    from rich.table import Table

    s = report.summary()
    console.print(f"[bold]Audit[/] of {s['rows']:,} rows x {s['columns']} columns"
                  + (f", target '{s['target']}' ({s['task']})" if s["target"] else "")
                  + f": [bold red]{s['blocking']} blocking[/], [yellow]{s['warning']} warning[/], [cyan]{s['info']} info[/]"
                  + f" ({report.timings.get('total', 0):.1f}s)")
    if not report.findings:
        console.print("No findings.")
        return
    tab = Table(header_style="bold", show_lines=False)
    for c in ("#", "severity", "column", "what", "why it matters", "what to do"):
        tab.add_column(c, overflow="fold")
    shown = report.findings if limit is None else report.findings[:limit]
    for i, f in enumerate(shown, 1):
        what = escape(f.what) + (f" [dim]({escape(f.sampled)})[/]" if f.sampled else "")
        tab.add_row(str(i), f"[{STYLE[f.severity]}]{f.severity}[/]", escape(f.column or "-"), what, escape(f.why), escape(f.fix))
    console.print(tab)
    if limit is not None and len(report.findings) > limit:
        console.print(f"... and {len(report.findings) - limit} more.")


class _Nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
