"""`trainyard monitor` (drift and performance report, exit code 0/1/2) and `trainyard retrain` (challenger vs champion)."""

from __future__ import annotations

from pathlib import Path

import typer

from trainyard.commands._common import console, fmt, print_json, split_list, table
from trainyard.commands.rag import is_index, monitor_index
from trainyard.errors import ConfigError, suggest
from trainyard.monitor.report import print_summary, to_jsonable

PERIODS = {"day": "D", "hour": "h", "week": "W"}


def register(app: typer.Typer) -> None:
    app.command("monitor")(monitor)
    app.command("retrain")(retrain)


def monitor(
    ref: str = typer.Argument(..., help="Model: NAME (its 'production' version, else the latest), NAME@VERSION or NAME@ALIAS."),
    data: Path = typer.Option(None, "--data", "-d", help="Compare this file with the reference instead of the prediction log."),
    since: str = typer.Option(None, "--since", help="Window start: 7d, 24h, 30m, 2w or a date (the log's time, or --time-col)."),
    last: int = typer.Option(None, "--last", help="Only the last N rows."),
    labels: Path = typer.Option(None, "--labels", help="Late labels: request_id (or key columns) + a label column."),
    label_col: str = typer.Option(None, "--label-col", help="Label column of --labels (default: 'label' or the target's name)."),
    key: list[str] = typer.Option(None, "--key", help="Join --labels on these columns instead of request_id."),
    reference: Path = typer.Option(None, "--reference", help="Profile this table as the reference instead of the stored profile."),
    time_col: str = typer.Option(None, "--time-col", help="Time column of --data, for --since and drift over time."),
    by: str = typer.Option("day", "--by", help="Period of the drift-over-time view: day, hour or week."),
    threshold: list[str] = typer.Option(None, "--threshold", help="Override a threshold, e.g. psi_drift=0.3 (repeatable)."),
    no_domain: bool = typer.Option(False, "--no-domain", help="Skip the multivariate domain-classifier check."),
    output: Path = typer.Option(None, "--output", "-o", help="Write report.json and report.html (plots embedded) into this folder."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Compare new rows with the model's training data: drift per feature, in predictions and jointly; metrics once labels arrive.

    Exit code: 0 ok, 1 warn, 2 drift (errors also exit 2, with an 'error:' line)."""
    from trainyard.monitor.check import monitor as run_monitor
    from trainyard.monitor.check import write_outputs
    from trainyard.monitor.drift import Thresholds

    if by not in PERIODS:
        raise ConfigError(f"--by '{by}' is not a period.", suggest(by, PERIODS))
    if data is None and is_index(ref):  # a document index: unanswered share and query drift from its query log
        raise typer.Exit(monitor_index(ref, since=since, last=last, as_json=as_json))
    report = run_monitor(ref, data=data, since=since, last=last, labels=labels, label_col=label_col, keys=split_list(key),
                         reference=reference, time_col=time_col, by=PERIODS[by], thresholds=Thresholds.parse(split_list(threshold)),
                         domain=not no_domain)
    paths = write_outputs(report, output) if output else None
    if as_json:
        print_json(to_jsonable(report))
    else:
        print_summary(report, console)
        if paths:
            console.print(f"Wrote {paths['html']} and {paths['json']}.")
    raise typer.Exit(report["exit_code"])


def retrain(
    ref: str = typer.Argument(..., help="Champion: NAME (the version holding --alias, else the latest), NAME@VERSION or NAME@ALIAS."),
    data: Path = typer.Option(..., "--data", "-d", help="Fresh labelled rows (with the target column)."),
    promote_if_better: bool = typer.Option(False, "--promote-if-better", help="Move the alias to the challenger if it wins by --margin."),
    margin: float = typer.Option(0.0, "--margin", help="How much better (in the model's metric) the challenger must score to be promoted."),
    alias: str = typer.Option("production", "--alias", help="The alias the champion holds and the challenger may take."),
    seed: int = typer.Option(None, "--seed", help="Seed of the split of the fresh data (default: the champion's)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Train a challenger on fresh data with the champion's recorded spec, compare both on the same fresh holdout, promote only if it wins."""
    from trainyard.monitor.retrain import retrain as run_retrain

    result = run_retrain(ref, data, promote_if_better=promote_if_better, margin=margin, alias=alias, seed=seed,
                         progress=None if as_json else lambda msg: console.print(f"  {msg}", highlight=False))
    if as_json:
        print_json(to_jsonable(result))
        return
    m = result["metric"]
    console.print(table(f"Champion vs challenger on the same fresh holdout ({result['holdout_rows']} rows)", ["metric", "champion", "challenger"],
                        [[k, result["champion"]["holdout"].get(k), result["challenger"]["holdout"].get(k)] for k in result["challenger"]["holdout"]]))
    verdict = "[bold green]promoted[/]" if result["promoted"] else "[yellow]not promoted[/]"
    console.print(f"Challenger [bold]{result['name']}@{result['challenger']['version']}[/] {m} {fmt(result['challenger']['score'])} vs champion "
                  f"@{result['champion']['version']} {fmt(result['champion']['score'])}: {verdict}. {result['reason']}", highlight=False)
