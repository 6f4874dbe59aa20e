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

# Labelling projects (trainyard.label): the items to label, every label given (never updated in place: an undo
# marks its row retracted), who holds an item now (leases), annotators' tokens (hashed) and the model rounds.
label_projects = Table(
    "label_projects",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("kind", String(20), nullable=False),  # table, text, image
    Column("source", Text, nullable=False),
    Column("classes", JSON, nullable=False),
    Column("target", String(200)),
    Column("text_col", String(200)),
    Column("id_col", String(200)),
    Column("settings", JSON, nullable=False),
    Column("features_sha256", String(64)),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

label_items = Table(
    "label_items",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project", String(64), ForeignKey("label_projects.name", ondelete="CASCADE"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("key", String(500), nullable=False),  # the id column's value, the row number, or the image's path
    Column("content_sha256", String(64), nullable=False),  # the item's version
    Column("data", JSON(none_as_null=True)),  # the row (table, text); the relative path (image)
    Column("given", JSON(none_as_null=True)),  # the label the data came with, if any
    Column("copies", Integer, nullable=False),  # annotators it needs: 2 for the overlap share, else 1
    Column("n_labels", Integer, nullable=False),  # annotators who labelled it (kept with each label, in its transaction)
    Column("final", JSON(none_as_null=True)),  # adjudicated, else agreed (majority), else given label
    Column("conflict", Integer, nullable=False),  # 1 while annotators disagree and nobody adjudicated
    Column("suggestion", JSON(none_as_null=True)),
    Column("confidence", Float),
    Column("priority", Float),  # the queue's order: highest first
    Column("suspect", Integer),  # 1 when the model doubts the given label (review queue)
    UniqueConstraint("project", "key", name="uq_label_item_key"),
    UniqueConstraint("project", "position", name="uq_label_item_position"),
)
Index("ix_label_items_priority", label_items.c.project, label_items.c.priority)
Index("ix_label_items_content", label_items.c.project, label_items.c.content_sha256)

label_annotations = Table(
    "label_annotations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project", String(64), ForeignKey("label_projects.name", ondelete="CASCADE"), nullable=False),
    Column("item_id", Integer, ForeignKey("label_items.id", ondelete="CASCADE"), nullable=False),
    Column("request_id", String(64), nullable=False),  # the client's id of this answer: a retry never duplicates it
    Column("action", String(10), nullable=False),  # label, skip
    Column("label", JSON(none_as_null=True)),  # null for a skip
    Column("annotator", String(64), nullable=False),
    Column("queue", String(40), nullable=False),
    Column("item_sha256", String(64), nullable=False),
    Column("comment", Text),
    Column("retracted_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("project", "request_id", name="uq_label_request"),
)
Index("ix_label_annotations_item", label_annotations.c.project, label_annotations.c.item_id)

label_leases = Table(
    "label_leases",
    metadata,
    Column("project", String(64), ForeignKey("label_projects.name", ondelete="CASCADE"), primary_key=True),
    Column("item_id", Integer, ForeignKey("label_items.id", ondelete="CASCADE"), primary_key=True),
    Column("annotator", String(64), primary_key=True),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)

label_annotators = Table(
    "label_annotators",
    metadata,
    Column("project", String(64), ForeignKey("label_projects.name", ondelete="CASCADE"), primary_key=True),
    Column("name", String(64), primary_key=True),
    Column("token_sha256", String(64), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

label_rounds = Table(
    "label_rounds",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project", String(64), ForeignKey("label_projects.name", ondelete="CASCADE"), nullable=False),
    Column("labels", Integer, nullable=False),  # labelled items the model was trained on
    Column("accuracy", Float),  # held-out (cross-validated) accuracy
    Column("model", String(100)),
    Column("seconds", Float),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
Index("ix_label_rounds_project", label_rounds.c.project, label_rounds.c.id)
