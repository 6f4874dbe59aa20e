"""The workspace: one directory holding the database and the artifacts.

Default `./trainyard-workspace`, or `TRAINYARD_HOME`. The database is SQLite
inside it unless `TRAINYARD_DB` names another SQLAlchemy URL (PostgreSQL for a
team); nothing else changes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path


@dataclass(frozen=True)
class Workspace:
    home: Path
    db_url: str

    @classmethod
    def resolve(cls, home: "str | os.PathLike | Workspace | None" = None, db_url: str | None = None) -> "Workspace":
        if isinstance(home, Workspace):
            return home
        home_path = Path(home or os.environ.get("TRAINYARD_HOME") or "trainyard-workspace").resolve()
        url = db_url or os.environ.get("TRAINYARD_DB") or f"sqlite:///{home_path / 'trainyard.db'}"
        return cls(home=home_path, db_url=url)

    @property
    def artifacts(self) -> Path:
        return self.home / "artifacts"

    def exists(self) -> bool:
        """Whether there is anything to read: the SQLite file is there, or the database is a server (PostgreSQL).
        Read-only commands check this instead of opening the store, which would create an empty workspace."""
        if not self.db_url.startswith("sqlite"):
            return True
        path = self.db_url.split(":///", 1)[-1]
        return path not in ("", ":memory:") and Path(path).exists()

    def ensure(self) -> "Workspace":
        self.artifacts.mkdir(parents=True, exist_ok=True)
        (self.home / "runs").mkdir(parents=True, exist_ok=True)
        return self

    def run_dir(self, run_id: str) -> Path:
        path = self.home / "runs" / run_id
        path.mkdir(parents=True, exist_ok=True)
        return path

    @cached_property
    def store(self):
        from trainyard.registry.store import Store

        self.ensure()
        return Store(self.db_url)
