"""Where a trial's fit runs: in this process (`LocalRunner`, the default, one fit after another) or as Ray tasks
across a cluster (`ClusterRunner`: as many at once as the cluster has CPUs, each with its CPU and memory declared).

The scheduler admits a trial, hands the runner a `Job` and is called back (`scheduler.finish`) with the fit's
outcome the moment it returns, which records the trial in the store. Trial numbers are given at submission and the
scheduler keeps its trials ordered by number, so the order in which a cluster's results arrive never changes the
ranking, the tuning or the ensemble (the same seed and trials give the same leaderboard as a local run).
"""

from __future__ import annotations

import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from trainyard.automl.budget import PeakMemory, memory_limit_mb
from trainyard.cluster.address import ClusterAddress
from trainyard.cluster.session import Cluster, TaskFailed, current_node
from trainyard.cluster.usage import NodeUsage
from trainyard.models.ensemble import Bag, fit_estimator, predictions
from trainyard.tasks import Task

POLL_S = 1.0  # how long one wait on the cluster blocks before deadlines are checked again
GRACE_S = 60.0  # added to every task's deadline (a cold worker imports the model libraries first)


@dataclass
class Job:
    """One admitted trial on its way through a runner."""

    number: int
    family: str
    params: dict
    extra: dict
    model: object  # the estimator (or Bag) to fit, its time budget set
    prep: str  # the preprocessing kind whose prepared data it fits on
    prior_seconds: float
    expected_seconds: float
    memory_mb: float
    budget_s: float | None
    started: float = field(default_factory=time.perf_counter)
    seconds: float = 0.0  # what the fit took, for the budget to learn from
    trial: object = None  # the recorded Trial, once finished


@dataclass
class FitOutcome:
    model: object
    preds: np.ndarray
    fit_seconds: float
    predict_ms: float  # per row, without the preprocessing
    peak_mb: float
    total_seconds: float
    node: str = ""  # the Ray node it ran on ("" in this process); a bag's folds: the node that fitted most of them
    cpu_seconds: float = 0.0  # CPU time of the process that fitted it, during the fit (a bag's folds: summed)
    folds: list = field(default_factory=list)  # a bag whose folds ran as separate tasks: [node, CPU seconds] per fold


@dataclass
class FoldOutcome:
    """One bag fold fitted as its own Ray task."""

    fold: int
    part: tuple  # (fitted estimator, out-of-fold rows, their predictions): Bag.assemble's input
    fit_seconds: float
    predict_ms: float
    peak_mb: float
    node: str
    cpu_seconds: float


def fit_candidate(model, data: tuple, task: str, n_classes: int | None, bagging: bool) -> FitOutcome:
    """Fit on (X_fit, y_fit, w_fit, X_eval), predict the validation (or out-of-fold) rows, time a prediction per row.
    Runs in this process or as a Ray task: everything it needs comes in its arguments."""
    X_fit, y_fit, w_fit, X_eval = data
    kind = Task(task)
    started, cpu = time.perf_counter(), time.process_time()
    with PeakMemory() as peak:
        t0 = time.perf_counter()
        fit_estimator(model, X_fit, y_fit, w_fit)
        fit_seconds = time.perf_counter() - t0
        sample = X_fit[:2000] if not hasattr(X_fit, "iloc") else X_fit.iloc[:2000]
        t1 = time.perf_counter()
        if bagging:
            preds = model.oof_
            predictions(model, sample, kind, n_classes)
            predict_ms = (time.perf_counter() - t1) * 1000 / max(sample.shape[0], 1)
        else:
            preds = predictions(model, X_eval, kind, n_classes)
            predict_ms = (time.perf_counter() - t1) * 1000 / max(X_eval.shape[0], 1)
    return FitOutcome(model, preds, fit_seconds, predict_ms, max(peak.peak_mb, 0.0), time.perf_counter() - started, current_node(),
                      time.process_time() - cpu)


def fit_fold(bag: Bag, fold: int, data: tuple, task: str, n_classes: int | None) -> FoldOutcome:
    """Fold `fold` of a bagged trial on (X_fit, y_fit, w_fit, _), with its share of the trial's time budget: a Ray task.
    The folds are Bag.folds's, so the assembled bag is the one a local fit makes."""
    X_fit, y_fit, w_fit, _ = data
    fit_idx, out_idx = bag.folds(y_fit)[fold]
    budget = bag.time_budget_s / bag.n_folds if bag.time_budget_s else None
    cpu = time.process_time()
    with PeakMemory() as peak:
        t0 = time.perf_counter()
        part = bag.fit_fold(X_fit, y_fit, w_fit, fit_idx, out_idx, budget)
        fit_seconds = time.perf_counter() - t0
        sample = X_fit[:2000] if not hasattr(X_fit, "iloc") else X_fit.iloc[:2000]
        t1 = time.perf_counter()
        predictions(part[0], sample, Task(task), n_classes)
        predict_ms = (time.perf_counter() - t1) * 1000 / max(sample.shape[0], 1)
    return FoldOutcome(fold, part, fit_seconds, predict_ms, max(peak.peak_mb, 0.0), current_node(), time.process_time() - cpu)


def assemble_bag(bag: Bag, n_rows: int, folds: list[FoldOutcome], seconds: float) -> FitOutcome:
    """A bagged trial's outcome from its folds, put together in fold order (never arrival order)."""
    folds = sorted(folds, key=lambda f: f.fold)
    bag.assemble(n_rows, [f.part for f in folds])
    nodes = [f.node for f in folds]
    busiest = max(nodes, key=nodes.count)  # ties: the first fold's
    return FitOutcome(bag, bag.oof_, sum(f.fit_seconds for f in folds), sum(f.predict_ms for f in folds), max(f.peak_mb for f in folds),
                      seconds, busiest, sum(f.cpu_seconds for f in folds), [[f.node, round(f.cpu_seconds, 3)] for f in folds])


def wrap_model(estimator, scheduler, budget_s: float | None):
    """The estimator as the trial fits it: bagged over k folds, or with its time budget."""
    s = scheduler
    if s.bagging:
        return Bag(estimator, s.plan.bag_folds, s.task.value, s.n_classes, s.plan.seed, time_budget_s=budget_s)
    if budget_s is not None:
        estimator.set_params(time_budget_s=budget_s)
    return estimator


class LocalRunner:
    """Each fit in this process, at once: the scheduler sees its result before it admits the next trial."""

    memory_source = "--memory-limit-mb / TRAINYARD_MEMORY_LIMIT_MB"

    def memory_limit_mb(self, setting: float | None) -> float:
        return memory_limit_mb(setting)

    def submit(self, scheduler, job: Job) -> None:
        data = scheduler.prepared_data(job.prep)
        try:
            outcome = fit_candidate(job.model, data, scheduler.task.value, scheduler.n_classes, scheduler.bagging)
        except Exception as exc:  # a family failing must not end the run; it is recorded
            job.seconds = time.perf_counter() - job.started
            scheduler.finish(job, f"{type(exc).__name__}: {exc}"[:500] + "\n" + traceback.format_exc(limit=3)[-1500:])
            return
        job.seconds = time.perf_counter() - job.started
        scheduler.finish(job, outcome)

    def settle(self, scheduler) -> None:
        """Nothing is ever left running."""


class ClusterRunner:
    """Fits as Ray tasks, one CPU and the trial's estimated memory each, at most `slots` at once; a bagged trial's k
    folds are k tasks, put together in fold order when the last returns. The prepared data is put in the object store
    once per preprocessing kind. A task whose node dies is retried by Ray; one that fails for good, or passes its
    deadline, fails its trial with the reason."""

    memory_source = "the most one Ray node offers, or --memory-limit-mb"

    def __init__(self, cluster: Cluster, slots: int | None = None, usage: NodeUsage | None = None, run=None):
        self.cluster, self.usage, self.run = cluster, usage, run  # live CPU per node, recorded in `run` (a RunContext)
        self.slots = max(1, slots or cluster.cpus())
        self.in_flight: dict = {}  # ref -> (Job, its bag fold or None)
        self.deadlines: dict = {}
        self.data: dict[str, object] = {}
        self.bags: dict[int, dict] = {}  # trial number -> {fold: FoldOutcome} of a bagged trial whose folds are out

    def memory_limit_mb(self, setting: float | None) -> float:
        """What one task may be given: the setting, or the memory Ray offers on its largest node."""
        largest = self.cluster.largest_memory_mb()
        return min(float(setting), largest) if setting else largest

    def submit(self, scheduler, job: Job) -> None:
        """The trial as one task, or a bagged trial as one task per fold (each waiting for a free slot)."""
        if job.prep not in self.data:
            self.data[job.prep] = self.cluster.put(scheduler.prepared_data(job.prep))
        data, deadline = self.data[job.prep], GRACE_S + max(10 * job.expected_seconds, 3 * (job.budget_s or 0))
        if isinstance(job.model, Bag):
            self.bags[job.number] = {}
            for fold in range(job.model.n_folds):
                self._launch(scheduler, job, fold, deadline, fit_fold, job.model, fold, data, scheduler.task.value, scheduler.n_classes)
        else:
            self._launch(scheduler, job, None, deadline, fit_candidate, job.model, data, scheduler.task.value, scheduler.n_classes, False)

    def _launch(self, scheduler, job: Job, fold: int | None, deadline_s: float, function, *args) -> None:
        while len(self.in_flight) >= self.slots:
            self._collect(scheduler)
        if fold is not None and job.number not in self.bags:  # an earlier fold failed while this one waited
            return
        name = f"trial-{job.number}-{job.family}" + (f"-fold-{fold}" if fold is not None else "")
        ref = self.cluster.submit(function, *args, num_cpus=1, memory_mb=job.memory_mb, name=name)
        self.in_flight[ref] = (job, fold)
        self.deadlines[ref] = time.monotonic() + deadline_s

    def settle(self, scheduler) -> None:
        """Wait for every task in flight (each within its deadline), recording each trial as it completes."""
        while self.in_flight:
            self._collect(scheduler)

    def _collect(self, scheduler) -> None:
        if self.usage is not None:
            self.usage.tick(self.run)
        for ref in self.cluster.wait(list(self.in_flight), timeout_s=POLL_S):
            if ref not in self.in_flight:  # cancelled with its bag's failed fold
                continue
            job, fold = self.in_flight.pop(ref)
            self.deadlines.pop(ref, None)
            try:
                outcome = self.cluster.result(ref)
            except TaskFailed as exc:
                self._failed(scheduler, job, fold, str(exc))
                continue
            self._done(scheduler, job, outcome)
        now = time.monotonic()
        for ref in [r for r, deadline in self.deadlines.items() if deadline < now and r in self.in_flight]:
            job, fold = self.in_flight.pop(ref)
            self.deadlines.pop(ref)
            self.cluster.cancel(ref)
            self._failed(scheduler, job, fold, f"no result within {time.perf_counter() - job.started:.0f}s on the cluster; cancelled")

    def _done(self, scheduler, job: Job, outcome) -> None:
        if isinstance(outcome, FoldOutcome):
            folds = self.bags.get(job.number)
            if folds is None:  # the bag already failed
                return
            folds[outcome.fold] = outcome
            if len(folds) < job.model.n_folds:
                return
            del self.bags[job.number]
            outcome = assemble_bag(job.model, len(scheduler.prepared_data(job.prep)[1]), list(folds.values()),
                                   time.perf_counter() - job.started)
        job.seconds = outcome.total_seconds
        scheduler.finish(job, outcome)

    def _failed(self, scheduler, job: Job, fold: int | None, reason: str) -> None:
        """A trial's task failed: the trial is recorded as failed (a bag: at its first failed fold; the others are cancelled)."""
        if fold is not None:
            if self.bags.pop(job.number, None) is None:
                return
            reason = f"fold {fold + 1} of {job.model.n_folds}: {reason}"
            for ref, (other, _) in list(self.in_flight.items()):
                if other is job:
                    self.in_flight.pop(ref)
                    self.deadlines.pop(ref, None)
                    self.cluster.cancel(ref)
        job.seconds = time.perf_counter() - job.started
        scheduler.finish(job, reason)


@contextmanager
def runner_for(address: ClusterAddress | None, workers: int | None = None, on_open=None, run=None):
    """The runner of a search: None (here) without a cluster; else a ClusterRunner on Ray, which is shut down after
    (with `run`, a RunContext, it samples each node's CPU use into the run as it goes)."""
    if address is None:
        yield None
        return
    with Cluster(address) as cluster:
        if on_open is not None:
            on_open(cluster.nodes())
        usage = NodeUsage(cluster) if run is not None else None
        try:
            yield ClusterRunner(cluster, workers, usage, run)
        finally:
            if usage is not None:
                usage.close()
