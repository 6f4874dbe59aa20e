"""THE run driver: create the run -> plan.prepare -> plan.fit -> evaluate once -> register, one status model.

Every kind of training is a plan of this driver: a table search (runs/table.py), an image or text network
(runs/neural.py), a language model (lm/train.py's LanguageModelRun). A plan knows its data and its model;
the driver owns what every run shares:

- the run row in the store, created before any work (so a killed run is visible) or reopened for `resume`;
- its status: `running` while it works, `finished` with the registered version, `interrupted` on Ctrl-C,
  `failed` with the error (any exception), recorded the same way for every kind;
- the run's folder (checkpoints, trials) and its metric log;
- registration: the artifact is written atomically, then the version is allocated in one transaction.

    result = execute(plan, Workspace.resolve(), emit=progress)
"""

from __future__ import annotations

import os

from trainyard.registry.plan import Plan, Progress, RunContext, RunResult, quiet
from trainyard.registry.workspace import Workspace


def execute(plan: Plan, ws: Workspace, *, emit: Progress | None = None, run_id: str | None = None) -> RunResult:
    """Run `plan` from start to registered model; with `run_id`, continue that run (resume)."""
    spec = plan.spec()
    store = ws.store
    resumed = run_id is not None
    if not resumed:
        run_id = store.create_run(spec.name, kind=spec.kind, task=spec.task, metric=spec.metric, target=spec.target,
                                  data_source=spec.data_source, data_fingerprint=spec.data_fingerprint, config=spec.config)
    else:
        store.update_run(run_id, status="running", pid=os.getpid(), error=None, finished_at=None)
        store.add_event(run_id, "resume", "resumed")
    run = RunContext(ws, run_id, spec.name, emit or quiet, resumed=resumed)
    with store.running(run_id):
        plan.prepare(run)
        plan.fit(run)
        metrics = plan.evaluate(run)
        run.emit("stage", {"message": "saving and registering the model"})
        registered = plan.register(run, metrics)
        store.update_run(run_id, status="finished", best_score=registered.best_score, best_family=registered.best_family,
                         model_version=registered.version)
    return plan.result(run, registered, metrics)
