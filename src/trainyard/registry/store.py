"""The store: runs, trials, metrics, events (run_records.py), model versions, aliases, tags (model_versions.py),
predictions and labels (prediction_log.py), over one database (database.py).

One `Store` per database URL. Writes are short transactions; on SQLite they
start with BEGIN IMMEDIATE (WAL journal, 60 s busy timeout) so that several
processes training into one workspace queue up instead of failing or
corrupting the file.
"""

from __future__ import annotations

from trainyard.registry.database import Database, now, parse_ref  # noqa: F401  (where callers find them)
from trainyard.registry.model_versions import ModelVersions
from trainyard.registry.prediction_log import PredictionLog
from trainyard.registry.run_records import RunRecords


class Store(RunRecords, ModelVersions, PredictionLog, Database):
    """Runs, the model registry and the prediction log of one workspace, in one database."""
