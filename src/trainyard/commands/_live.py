"""Live progress in the terminal (rich): trials of a table search, steps of a neural or language-model run."""

from __future__ import annotations

from trainyard.commands._common import console, fmt

SPARK = "▁▂▃▄▅▆▇█"


def live_for(kind: str, enabled: bool, time_limit: float | None = None):
    """The progress display of a kind of run (tabular, deep, language-model)."""
    if kind == "rl":
        return RLLive(enabled)
    if kind in ("language-model", "deep", "embedding"):
        return StepLive(enabled, language_model=kind == "language-model")
    return TableLive(enabled, time_limit)


class TableLive:
    """Rich progress: a spinner with the best score so far, and one line per finished trial as it lands."""

    def __init__(self, enabled: bool, time_limit: float | None = None):
        self.enabled = enabled
        self.time_limit = time_limit
        self.best = None
        self.count = 0
        self.metric = ""
        self.greater = True
        self.header_shown = False
        self.on_cluster_run = False  # a node column when the trials run on Ray
        self.node_tasks: dict = {}  # Ray node -> its line under the progress

    def __enter__(self):
        if self.enabled:
            from rich.progress import Progress

            self.progress = Progress(*self.columns(), console=console, transient=True)
            self.progress.__enter__()
            self.task = self.progress.add_task("starting", total=None)
        return self

    def columns(self) -> list:
        from rich.progress import SpinnerColumn, TextColumn, TimeElapsedColumn

        return [SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn()]

    def update(self, kind: str, info: dict) -> None:
        handler = getattr(self, f"on_{kind}", None)
        if self.enabled and handler is not None:
            handler(info)

    def on_stage(self, info: dict) -> None:
        self.progress.update(self.task, description=info["message"])

    def on_run(self, info: dict) -> None:
        from trainyard.metrics import METRICS

        self.metric = info["metric"]
        self.val_width = max(len("val " + self.metric), 7)
        self.greater = METRICS[self.metric].greater_is_better if self.metric in METRICS else True
        resumed = f", resuming from {info['resumed']} recorded trials" if info.get("resumed") is not None else ""
        console.print(f"Run [bold]{info['run_id']}[/]: {info['task']} task, optimising {info['metric']}{resumed}; families {', '.join(info['families'])}")
        self.header_shown = False

    def on_note(self, info: dict) -> None:
        from rich.markup import escape

        console.print(f"  [yellow]note[/]: {escape(info['message'])}", highlight=False)

    def on_plan(self, info: dict) -> None:
        budget = "no time limit" if info["time_limit"] is None else f"{info['time_limit']:.0f}s"
        trials = f", at most {info['max_trials']} trials" if info.get("max_trials") else ""
        bag = f", {info['bag_folds']}-fold bagging" if info.get("bag_folds") else ", scored on the validation split"
        console.print(f"  search budget {budget}{trials}{bag}", highlight=False)

    def on_nodes(self, info: dict) -> None:
        """A line per Ray node under the progress, refreshed with each sample: the CPUs its Ray workers use (the bar, where
        the display has one) and the machine's load."""
        tasks = self.node_tasks
        for n in info["nodes"]:
            if n["node"] not in tasks:
                tasks[n["node"]] = self.progress.add_task("", total=max(n["cpus"], 1e-9), node=True)
            if n["cpus_busy"] is None:
                text = f"  node {n['node']}: no answer from its sampler (node lost?)"
            else:
                text = (f"  node {n['node']}: {n['cpus_busy']:.2f} of {n['cpus']:g} CPU busy with Ray work, "
                        f"machine {n['machine_pct']:.0f}% of {n['machine_cpus']} cores")
            self.progress.update(tasks[n["node"]], description=text, completed=min(n["cpus_busy"] or 0.0, n["cpus"]))

    def on_cluster(self, info: dict) -> None:
        nodes = info["nodes"]
        listed = ", ".join(f"{n['id']} ({n['cpus']:g} CPU)" for n in nodes)
        console.print(f"  on Ray: {len(nodes)} nodes, {sum(n['cpus'] for n in nodes):g} CPUs: {listed}", highlight=False)
        self.on_cluster_run = True

    def on_audit(self, info: dict) -> None:
        from rich.markup import escape

        report = info["report"]
        s = report.summary()
        console.print(f"Audit: [bold red]{s['blocking']} blocking[/], [yellow]{s['warning']} warning[/], {s['info']} info"
                      f" ({report.timings.get('total', 0):.1f}s)")
        for f in [f for f in report.findings if f.severity != "info"][:8]:
            style = "bold red" if f.severity == "blocking" else "yellow"
            console.print(f"  [{style}]{f.severity}[/] " + escape((f"[{f.column}] " if f.column else "") + f.what), highlight=False)

    def on_trial(self, info: dict) -> None:
        t = info["trial"]
        self.count += 1
        better = t.status == "ok" and (self.best is None or (t.val_score > self.best if self.greater else t.val_score < self.best))
        if better:
            self.best = t.val_score
        note = "best so far" if better else ""
        if t.status != "ok":
            note = f"[yellow]{t.status}[/]: {(t.message or '').splitlines()[0] if t.message else ''}"
        elif t.family == "ensemble":
            note = (t.message or "") + ("; best so far" if better else "")
        node = f"{t.extra.get('node', '-'):<8} " if self.on_cluster_run else ""
        if not self.header_shown:  # under the audit and the budget, right above the first trial
            node_head = f"{'node':<8} " if self.on_cluster_run else ""
            console.print(f"  {'trial':>5}  {'family':<13} {'val ' + self.metric:>{self.val_width}} {'fit s':>6} {'ms/row':>7} {'MB':>5}  {node_head}note", style="bold",
                          highlight=False, no_wrap=True, overflow="ellipsis")
            self.header_shown = True
        console.print(f"  {t.number:>5}  {t.family:<13} {fmt(t.val_score):>{self.val_width}} {fmt(t.fit_seconds, 1):>6} {fmt(t.predict_ms_per_row, 3):>7} "
                      f"{fmt(t.memory_mb, 0):>5}  {node}{note}", highlight=False, no_wrap=True, overflow="ellipsis")
        self.progress.update(self.task, description=f"searching: {self.count} trials, best {self.metric} {fmt(self.best)}")

    def __exit__(self, *exc):
        if self.enabled:
            self.progress.__exit__(*exc)
        return False


def sparkline(values: list[float], width: int = 30) -> str:
    values = values[-width:]
    if not values:
        return ""
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0
    return "".join(SPARK[min(len(SPARK) - 1, int((v - lo) / span * (len(SPARK) - 1)))] for v in values)


class StepLive(TableLive):
    """A progress bar over optimizer steps with the latest loss, a loss sparkline and the last validation scores
    (neural and language-model runs; `language_model` picks the run line that fits them)."""

    def __init__(self, enabled: bool, language_model: bool = False):
        super().__init__(enabled)
        self.language_model = language_model
        self.losses: list[float] = []
        self.val = ""

    def columns(self) -> list:
        from rich.progress import BarColumn, SpinnerColumn, TextColumn, TimeElapsedColumn

        return [SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), _steps_column(), TimeElapsedColumn()]

    def on_run(self, info: dict) -> None:
        if self.language_model:
            console.print(f"Run [bold]{info['run_id']}[/]: {info['task']} with {info['family']} ({info['sizes']})")
        else:
            console.print(f"Run [bold]{info['run_id']}[/]: {info['task']} with {info['family']}, split {info['sizes']}")

    def on_step(self, info: dict) -> None:
        self.losses.append(info["loss"])
        self.progress.update(self.task, completed=info["step"], total=info["total"],
                             description=f"epoch {info['epoch'] + 1} loss {info['loss']:.4f} {sparkline(self.losses)} {self.val}")

    def on_eval(self, info: dict) -> None:
        self.val = " ".join(f"{k} {v:.4f}" for k, v in info["metrics"].items())
        mark = " [green]best[/]" if info["improved"] else ""
        console.print(f"  step {info['step']:>6} epoch {info['epoch'] + 1}: {self.val}{mark}", highlight=False)

    def on_note(self, info: dict) -> None:
        from rich.markup import escape

        console.print(f"  [yellow]note[/]: {escape(info['message'])}", highlight=False)

    def on_rollback(self, info: dict) -> None:
        console.print(f"  [yellow]rollback[/]: {info['message']}", highlight=False)


def _steps_column():
    """The "done/total steps" column, blank on the per-node lines (whose bar is CPU use, not steps)."""
    from rich.progress import ProgressColumn
    from rich.text import Text

    class Steps(ProgressColumn):
        def render(self, task) -> Text:
            return Text("" if task.fields.get("node") else f"{task.completed:g}/{task.total:g} steps" if task.total else "")

    return Steps()


class RLLive(TableLive):
    """Steps of the environment, the training episodes' mean return with a sparkline, the latest loss."""

    def __init__(self, enabled: bool):
        super().__init__(enabled)
        self.curve: list[float] = []

    def columns(self) -> list:
        from rich.progress import BarColumn, SpinnerColumn, TextColumn, TimeElapsedColumn

        return [SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total} steps"), TimeElapsedColumn()]

    def on_run(self, info: dict) -> None:
        console.print(f"Run [bold]{info['run_id']}[/]: {info['algo'].upper()} on {info['env']}, {info['timesteps']:,} steps "
                      f"(defaults: {info['defaults']})", highlight=False)

    def on_step(self, info: dict) -> None:
        m = info["metrics"]
        if "episode_return" in m:
            self.curve.append(m["episode_return"])
        loss = m.get("loss", m.get("value_loss"))
        ret = f"return {m['episode_return']:.1f} {sparkline(self.curve)}" if "episode_return" in m else "no episode finished yet"
        self.progress.update(self.task, completed=info["step"], total=info["total"],
                             description=f"{ret}" + (f" loss {loss:.3g}" if loss is not None else ""))

    def on_rollback(self, info: dict) -> None:
        console.print(f"  [yellow]rollback[/]: {info['message']}", highlight=False)
