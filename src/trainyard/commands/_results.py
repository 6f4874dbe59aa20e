"""What the terminal shows when a run ends: the leaderboard and test metrics of each kind of run."""

from __future__ import annotations

from trainyard.commands._common import console, err_console, fmt, print_json, table
from trainyard.commands.rag import show_encoder_result, show_index_result
from trainyard.commands.rl import show_rl_result
from trainyard.evaluation.render import ci, num


def show_result(result, as_json: bool) -> None:
    """The result of any kind of run (`train` and `resume` end here)."""
    {"tabular": show_table_result, "deep": show_neural_result, "language-model": show_lm_result,
     "rag-index": show_index_result, "text-encoder": show_encoder_result, "rl": show_rl_result}[result.kind](result, as_json)


def metrics_table(title: str, rows: list[dict]):
    """metric | value | 95% CI | baseline | better than baseline: the table `train` and `evaluate` print."""
    return table(title, ["metric", "value", "95% CI", "baseline", "better than baseline"],
                 [[r["metric"], num(r["value"]), ci(r["ci_low"], r["ci_high"]), num(r.get("baseline")), num(r.get("beats_baseline"))] for r in rows])


def print_findings(data: dict) -> None:
    over = data.get("overfitting") or {}
    if over.get("verdict"):
        console.print(f"Overfitting: [bold]{over['verdict']}[/] (" + ", ".join(f"{k} {v:.4g}" for k, v in over["scores"].items() if v is not None) + ")", highlight=False)
    rel = (data.get("calibration") or {}).get("reliability")
    if rel:
        console.print(f"Calibration: ECE {rel['ece']:.4f}", highlight=False)
    for col in (data.get("fairness") or {}).get("columns", []):
        for flag in col["flags"]:
            console.print(f"[bold red]fairness flag[/] {flag}", highlight=False)
        if not col["flags"]:
            console.print(f"Fairness by {col['column']}: no measure out of bounds", highlight=False)


def show_table_result(result, as_json: bool) -> None:
    """The leaderboard, the held-out test metrics and the findings of a table run."""
    if as_json:
        print_json({
            "run_id": result.run_id, "name": result.name, "version": result.version, "task": result.task,
            "metric": result.metric, "test": result.metrics, "baseline": result.baseline, "split": result.split,
            "leaderboard": result.leaderboard.reset_index(names="rank").to_dict(orient="records"),
            "evaluation": result.evaluation.to_dict() if result.evaluation else None, "model_card": str(result.card_dir) if result.card_dir else None,
            "notes": result.notes,
        })
        return
    board = result.leaderboard
    console.print(leaderboard_table(board.head(25), result.metric, console.width))
    if len(board) > 25:
        console.print(f"... {len(board)} trials in all; `trainyard runs` and the workspace database keep every one.")
    console.print(metrics_table(f"Held-out test set ({result.split['test']} rows, scored once)", result.evaluation["metrics"]))
    print_findings(result.evaluation.data)
    console.print(f"Model card: {result.card_dir / 'model_card.html'}", highlight=False)
    console.print(f"Registered [bold]{result.name}@{result.version}[/] ({result.model.family}), run {result.run_id}. "
                  f"Test {result.metric} = {fmt(result.test_score)}.")
    for note in result.notes:
        err_console.print(f"[bold red]WARNING:[/] {note}", highlight=False)


def leaderboard_table(board, metric: str, width: int):
    """The leaderboard, readable at any terminal width: one line per trial (long notes end in an ellipsis), the
    parameters as `name=value` rather than JSON, and the prediction-time and memory columns only where there is room."""
    from rich.table import Table

    wide = width >= 110
    names = ["rank", "trial", "family", f"val {metric}", "fit s", *(["ms/row", "MB"] if wide else []), "status"]
    rows = []
    for rank, row in board.iterrows():
        cells = [str(rank), str(row["trial"]), str(row["family"]), fmt(row.get(f"val_{metric}")), fmt(row.get("fit_s"), 1)]
        if wide:
            cells += [fmt(row.get("predict_ms_per_row"), 3), fmt(row.get("memory_mb"), 0)]
        rows.append([*cells, str(row["status"]), leaderboard_note(row)])
    widths = [max(len(name), *(len(r[i]) for r in rows)) for i, name in enumerate(names)] if rows else [len(n) for n in names]
    note_width = max(12, width - sum(widths) - 3 * (len(names) + 1) - 1)  # fixed columns at their content's width
    tab = Table(title=f"Leaderboard (validation {metric})", title_justify="left", header_style="bold")
    for name, w in zip(names, widths):
        tab.add_column(name, no_wrap=True, min_width=w, justify="left" if name in ("family", "status") else "right")
    tab.add_column("note", no_wrap=True, max_width=note_width)
    for r in rows:
        note = r[-1] if len(r[-1]) <= note_width else r[-1][: note_width - 1] + "…"
        tab.add_row(*r[:-1], note)
    return tab


def leaderboard_note(row) -> str:
    """The trial's message (why it was skipped or failed, what an ensemble holds), else its parameters as name=value."""
    import json

    if row.get("message"):
        return str(row["message"]).splitlines()[0]
    try:
        params = json.loads(row.get("params") or "{}")
    except (TypeError, ValueError):
        return str(row.get("params") or "")
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


def show_neural_result(result, as_json: bool) -> None:
    if as_json:
        print_json({"run_id": result.run_id, "name": result.name, "version": result.version, "task": result.task,
                    "family": result.family, "metric": result.metric, "test": result.metrics, "split": result.split,
                    "notes": result.notes, "history": result.history})
        return
    console.print(table(f"Held-out test set ({result.split['test']} examples, scored once)", ["metric", "value"],
                        [[k, v] for k, v in result.metrics.items()]))
    console.print(f"Registered [bold]{result.name}@{result.version}[/] ({result.family}), run {result.run_id}. "
                  f"Test {result.metric} = {fmt(result.test_score)}.")
    for note in result.notes or []:
        console.print(f"[yellow]note:[/] {note}", highlight=False)


def show_lm_result(result, as_json: bool) -> None:
    if as_json:
        print_json({"run_id": result.run_id, "name": result.name, "version": result.version, "metrics": result.metrics,
                    "steps": result.steps, "seconds": result.seconds, "tokens_per_second": result.tokens_per_second, "samples": result.samples,
                    "timed_out": result.timed_out})
        return
    console.print(table("Held-out evaluation", ["metric", "value"], [[k, v] for k, v in result.metrics.items()]))
    for s in result.samples:
        console.print(f"[bold]{s['prompt']!r}[/]\n  before: {s['before']!r}\n  after:  {s['after']!r}", highlight=False)
    why = " (stopped by --time-limit)" if result.timed_out else ""
    console.print(f"Registered [bold]{result.name}@{result.version}[/] after {result.steps} steps{why} ({result.seconds:.0f}s), run {result.run_id}.")
