"""Which plan a request becomes, decided in one place, and `resume` for every kind of run.

    kind_of(task, text_col, model)      -> "tabular" | "deep" | "language-model"
    train_table / train_neural / train_language_model   -> execute(the kind's plan)
    resume(run_id)                      -> the run's plan rebuilt from the store, continued by the same driver
"""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from trainyard.config import TrainConfig
from trainyard.data.load import load_table, source_name
from trainyard.errors import ConfigError, NotFoundError
from trainyard.lm.settings import LMSettings
from trainyard.lm.train import LanguageModelPlan
from trainyard.rag.build import IndexPlan
from trainyard.rag.encoder import ENCODER_KIND
from trainyard.rag.finetune import EncoderPlan
from trainyard.rag.index import INDEX_KIND
from trainyard.rag.settings import EmbeddingSettings
from trainyard.registry.names import safe_stem
from trainyard.registry.plan import Progress, RunResult, quiet
from trainyard.registry.workspace import Workspace
from trainyard.rl.config import RLSettings
from trainyard.runs.driver import execute
from trainyard.runs.settings import NeuralSettings
from trainyard.runs.table import TablePlan


RAG_PLANS = {INDEX_KIND: IndexPlan, ENCODER_KIND: EncoderPlan}


def train_table(data, cfg: TrainConfig, *, workspace=None, progress: Progress | None = None, started: float | None = None) -> RunResult:
    """Audit, split, search, test once and register a table model (`data`: a path or a DataFrame)."""
    started = time.perf_counter() if started is None else started
    (progress or quiet)("stage", {"message": "loading data"})
    df = load_table(data)
    plan = TablePlan.new(df, cfg, name=cfg.name or default_name(data), source=source_name(data), started=started)
    return execute(plan, Workspace.resolve(workspace), emit=progress)


def resume_table(data, ref: str, *, workspace=None, progress: Progress | None = None, started: float | None = None) -> RunResult:
    """Continue an interrupted table search on `data` (the same data: its fingerprint is checked)."""
    started = time.perf_counter() if started is None else started
    (progress or quiet)("stage", {"message": "loading data"})
    ws = Workspace.resolve(workspace)
    plan = TablePlan.resumed(load_table(data), ref, ws, started=started)
    return execute(plan, ws, emit=progress, run_id=plan.run_id)


def train_neural(settings: NeuralSettings, *, workspace=None, progress: Progress | None = None) -> RunResult:
    from trainyard.runs.neural import NeuralPlan  # defers PyTorch: a table run never loads it

    return execute(NeuralPlan(settings), Workspace.resolve(workspace), emit=progress)


def train_encoder(data, settings: EmbeddingSettings, *, workspace=None, progress: Progress | None = None) -> RunResult:
    """Fine-tune a retrieval encoder on (query, passage) pairs (trainyard.rag.finetune)."""
    return execute(EncoderPlan(data, settings), Workspace.resolve(workspace), emit=progress)


def train_policy(settings: RLSettings, *, workspace=None, progress: Progress | None = None, started: float | None = None) -> RunResult:
    """Train a reinforcement-learning policy (trainyard.rl); `started` is a time.time() stamp for --time-limit."""
    from trainyard.rl.run import PolicyPlan  # defers PyTorch and Gymnasium

    return execute(PolicyPlan(settings, started=started), Workspace.resolve(workspace), emit=progress)


def train_language_model(data, settings: LMSettings, *, workspace=None, progress: Progress | None = None,
                         started: float | None = None) -> RunResult:
    return execute(LanguageModelPlan(data, settings, started=started), Workspace.resolve(workspace), emit=progress)


def resume(run_id: str, *, workspace=None, progress: Progress | None = None, started: float | None = None,
           workers: int | None = None) -> RunResult:
    """Continue a killed or interrupted run of any kind: a neural or language-model run from its last checkpoint (it ends
    as the uninterrupted run would), a table search from its recorded trials (reading its data file again)."""
    ws = Workspace.resolve(workspace)
    run = ws.store.get_run(run_id)
    config = run["config"] or {}
    if workers is not None and not (config.get("cluster") or (config.get("lm") or {}).get("cluster")):
        raise ConfigError(f"--workers applies to resuming a data-parallel run (--cluster); run {run['id']} is not one.",
                          f"resume it without --workers: trainyard resume {run['id']}.")
    if run["kind"] == "language-model":
        plan = LanguageModelPlan.of_run(run, started=started, workers=workers)
    elif run["kind"] == "deep":
        from trainyard.runs.neural import resumable_neural_run  # defers PyTorch

        plan = resumable_neural_run(run, workers=workers)
    elif run["kind"] == "rl":  # from its last checkpoint, bit-identical to an uninterrupted run
        from trainyard.rl.run import PolicyPlan  # defers PyTorch and Gymnasium

        plan = PolicyPlan.of_run(run)
    elif run["kind"] in RAG_PLANS:  # a document index (built again) or a retrieval encoder (from its last checkpoint)
        plan = RAG_PLANS[run["kind"]].of_run(run)
    else:
        return resume_table(table_source(run), run["id"], workspace=ws, progress=progress, started=started)
    return execute(plan, ws, emit=progress, run_id=run["id"])


def table_source(run: dict) -> str:
    """The data file a table run was trained on, which its resume reads again (its fingerprint is checked there)."""
    source = run.get("data_source") or ""
    if source in ("", "<DataFrame>"):
        what = "was trained on an in-memory DataFrame" if source else "recorded no data file"
        raise ConfigError(f"Run {run['id']} {what}, so there is nothing to read again.",
                          f"pass the same data: `trainyard train DATA --resume {run['id']}` (trainyard.train(df, resume='{run['id']}') in Python).")
    if not Path(source).exists():
        raise NotFoundError(f"Run {run['id']}'s data file {source} is gone.",
                            f"put it back at that path, or pass the same data: `trainyard train DATA --resume {run['id']}`.")
    return source


def default_name(data) -> str:
    if isinstance(data, pd.DataFrame):
        return "model"
    return safe_stem(Path(str(data).rstrip("/")).name.split(".")[0], "model")

