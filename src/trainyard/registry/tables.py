"""Tables of the workspace database (SQLAlchemy Core, works on SQLite and PostgreSQL).

Every subsystem keeps its rows here so the dashboard and the CLI read one
place: runs and their trials (model search), step metrics and events (the
deep-learning loop), model versions and aliases (the registry), and the
prediction log and late labels (serving and monitoring).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

runs = Table(
    "runs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("kind", String(40), nullable=False, default="tabular"),
    Column("status", String(20), nullable=False),  # running, finished, failed, interrupted
    Column("task", String(40)),
    Column("metric", String(40)),
    Column("target", String(200)),
    Column("data_source", Text),
    Column("data_fingerprint", String(64)),
    Column("config", JSON),
    Column("best_score", Float),
    Column("best_family", String(100)),
    Column("model_version", Integer),
    Column("error", Text),
    Column("pid", Integer),
    Column("host", String(200)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
)
Index("ix_runs_created", runs.c.created_at)
Index("ix_runs_name", runs.c.name)
Index("ix_runs_status_created", runs.c.status, runs.c.created_at)  # the dashboard's status filter, newest first

trials = Table(
    "trials",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("family", String(100), nullable=False),
    Column("params", JSON),
    Column("status", String(20), nullable=False),  # ok, failed, skipped
    Column("val_score", Float),
    Column("fit_seconds", Float),
    Column("predict_ms_per_row", Float),
    Column("memory_mb", Float),
    Column("message", Text),
    Column("extra", JSON),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("run_id", "number", name="uq_trial_number"),
)
Index("ix_trials_run", trials.c.run_id)

metrics = Table(
    "metrics",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("key", String(100), nullable=False),
    Column("step", Integer, nullable=False),
    Column("value", Float),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
Index("ix_metrics_run_key", metrics.c.run_id, metrics.c.key, metrics.c.step)

events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(32), ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("message", Text),
    Column("data", JSON),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
Index("ix_events_run", events.c.run_id)

models = Table(
    "models",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),
    Column("version", Integer, nullable=False),
    Column("run_id", String(32)),
    Column("task", String(40)),
    Column("metric", String(40)),
    Column("test_score", Float),
    Column("metrics", JSON),
    Column("family", String(100)),
    Column("artifact_path", Text, nullable=False),
    Column("meta_sha256", String(64), nullable=False),
    Column("tags", JSON),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("name", "version", name="uq_model_version"),
)
Index("ix_models_name", models.c.name)

aliases = Table(
    "aliases",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("alias", String(100), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

predictions = Table(
    "predictions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("request_id", String(64), nullable=False),
    Column("model_name", String(200), nullable=False),
    Column("version", Integer, nullable=False),
    Column("inputs", JSON),
    Column("outputs", JSON),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
Index("ix_predictions_model_time", predictions.c.model_name, predictions.c.created_at)
Index("ix_predictions_request", predictions.c.request_id)

labels = Table(
    "labels",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model_name", String(200), nullable=False),
    Column("request_id", String(64), nullable=False),
    Column("label", JSON),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
Index("ix_labels_request", labels.c.model_name, labels.c.request_id)
