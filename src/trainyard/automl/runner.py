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
    node: str = ""  # the Ray node it ran on ("" in this process)
    cpu_seconds: float = 0.0  # CPU time of the process that fitted it, during the fit


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
    """Fits as Ray tasks, one CPU and the trial's estimated memory each, at most `slots` at once; the prepared data
    is put in the object store once per preprocessing kind. A task whose node dies is retried by Ray; one that fails
    for good, or passes its deadline, is recorded as failed with the reason."""

    memory_source = "the most one Ray node offers, or --memory-limit-mb"

    def __init__(self, cluster: Cluster, slots: int | None = None):
        self.cluster = cluster
        self.slots = max(1, slots or cluster.cpus())
        self.in_flight: dict = {}  # ref -> Job
        self.deadlines: dict = {}
        self.data: dict[str, object] = {}

    def memory_limit_mb(self, setting: float | None) -> float:
        """What one task may be given: the setting, or the memory Ray offers on its largest node."""
        largest = self.cluster.largest_memory_mb()
        return min(float(setting), largest) if setting else largest

    def submit(self, scheduler, job: Job) -> None:
        while len(self.in_flight) >= self.slots:
            self._collect(scheduler)
        if job.prep not in self.data:
            self.data[job.prep] = self.cluster.put(scheduler.prepared_data(job.prep))
        ref = self.cluster.submit(fit_candidate, job.model, self.data[job.prep], scheduler.task.value, scheduler.n_classes,
                                  scheduler.bagging, num_cpus=1, memory_mb=job.memory_mb, name=f"trial-{job.number}-{job.family}")
        self.in_flight[ref] = job
        self.deadlines[ref] = time.monotonic() + GRACE_S + max(10 * job.expected_seconds, 3 * (job.budget_s or 0))

    def settle(self, scheduler) -> None:
        """Wait for every task in flight (each within its deadline), recording each as it returns."""
        while self.in_flight:
            self._collect(scheduler)

    def _collect(self, scheduler) -> None:
        for ref in self.cluster.wait(list(self.in_flight), timeout_s=POLL_S):
            job = self.in_flight.pop(ref)
            self.deadlines.pop(ref, None)
            try:
                outcome = self.cluster.result(ref)
            except TaskFailed as exc:
                job.seconds = time.perf_counter() - job.started
                scheduler.finish(job, str(exc))
                continue
            job.seconds = outcome.total_seconds
            scheduler.finish(job, outcome)
        now = time.monotonic()
        for ref in [r for r, deadline in self.deadlines.items() if deadline < now]:
            job = self.in_flight.pop(ref)
            self.deadlines.pop(ref)
            self.cluster.cancel(ref)
            job.seconds = time.perf_counter() - job.started
            scheduler.finish(job, f"no result within {time.perf_counter() - job.started:.0f}s on the cluster; cancelled")


@contextmanager
def runner_for(address: ClusterAddress | None, workers: int | None = None, on_open=None):
    """The runner of a search: None (here) without a cluster; else a ClusterRunner on Ray, which is shut down after."""
    if address is None:
        yield None
        return
    with Cluster(address) as cluster:
        if on_open is not None:
            on_open(cluster.nodes())
        yield ClusterRunner(cluster, workers)
