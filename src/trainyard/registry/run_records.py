"""Runs, their trials, step metrics and events: what every training run writes as it goes."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

from trainyard.errors import NotFoundError, suggest
from trainyard.registry import tables as t
from trainyard.registry.database import now
from trainyard.registry.names import check_name


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunRecords:
    """The runs part of the store (mixed into `Store`, which provides `tx` and `_rows`)."""

    # runs ----------------------------------------------------------------
    def create_run(self, name: str, *, kind: str = "tabular", **fields: Any) -> str:
        check_name(name)
        run_id = uuid.uuid4().hex[:12]
        stamp = now()
        with self.tx() as conn:
            conn.execute(
                t.runs.insert().values(
                    id=run_id, name=name, kind=kind, status="running", pid=os.getpid(),
                    host=socket.gethostname(), created_at=stamp, updated_at=stamp, **fields,
                )
            )
        return run_id

    def update_run(self, run_id: str, **fields: Any) -> None:
        if fields.get("status") in {"finished", "failed", "interrupted"}:
            fields.setdefault("finished_at", now())
        with self.tx() as conn:
            conn.execute(t.runs.update().where(t.runs.c.id == run_id).values(updated_at=now(), **fields))

    @contextmanager
    def running(self, run_id: str) -> Iterator[None]:
        """Mark the run interrupted (Ctrl-C) or failed (any error, kept in `error`) if the block raises."""
        try:
            yield
        except KeyboardInterrupt:
            self.update_run(run_id, status="interrupted", error=f"interrupted by the user; `trainyard resume {run_id}` continues it")
            raise
        except BaseException as exc:
            self.update_run(run_id, status="failed", error=f"{type(exc).__name__}: {exc}"[:2000])
            raise

    def get_run(self, run_id: str) -> dict[str, Any]:
        self.reconcile_stale_runs()
        if run_id == "last":
            rows = self._rows(sa.select(t.runs).order_by(t.runs.c.created_at.desc()).limit(1))
        else:
            rows = self._rows(sa.select(t.runs).where(t.runs.c.id == run_id))
        if not rows:
            ids = [r["id"] for r in self._rows(sa.select(t.runs.c.id).order_by(t.runs.c.created_at.desc()).limit(20))]
            hint = suggest(run_id, ids) if ids else "this workspace has no runs yet."
            raise NotFoundError(f"No run '{run_id}' in this workspace.", "see `trainyard runs`; " + hint)
        return rows[0]

    def list_runs(self, limit: int = 50, offset: int = 0, name: str | None = None) -> list[dict[str, Any]]:
        self.reconcile_stale_runs()
        q = sa.select(t.runs).order_by(t.runs.c.created_at.desc()).limit(limit).offset(offset)
        if name:
            q = q.where(t.runs.c.name == name)
        return self._rows(q)

    def count_runs(self) -> int:
        with self.reader.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(t.runs)).scalar_one()

    def reconcile_stale_runs(self) -> None:
        """Mark 'running' runs of this host whose process is gone as 'interrupted'."""
        host = socket.gethostname()
        rows = self._rows(sa.select(t.runs.c.id, t.runs.c.pid).where(t.runs.c.status == "running", t.runs.c.host == host))
        dead = [r["id"] for r in rows if r["pid"] and not _pid_alive(r["pid"])]
        for run_id in dead:
            self.update_run(run_id, status="interrupted", error="the process ended without finishing (killed or crashed)")

    # trials --------------------------------------------------------------
    def add_trial(self, run_id: str, number: int, family: str, **fields: Any) -> None:
        with self.tx() as conn:
            conn.execute(t.trials.insert().values(run_id=run_id, number=number, family=family, created_at=now(), **fields))

    def trials(self, run_id: str) -> list[dict[str, Any]]:
        return self._rows(sa.select(t.trials).where(t.trials.c.run_id == run_id).order_by(t.trials.c.number))

    # step metrics and events ----------------------------------------------
    def log_metrics(self, run_id: str, step: int, values: dict[str, float]) -> None:
        stamp = now()
        rows = [dict(run_id=run_id, key=k, step=int(step), value=float(v), created_at=stamp) for k, v in values.items()]
        if rows:
            with self.tx() as conn:
                conn.execute(t.metrics.insert(), rows)

    def log_metrics_many(self, run_id: str, steps: list[tuple[int, dict[str, float]]]) -> None:
        """Several steps' metrics in one transaction (the training loop flushes its buffer this way)."""
        stamp = now()
        rows = [dict(run_id=run_id, key=k, step=int(step), value=float(v), created_at=stamp) for step, values in steps for k, v in values.items()]
        if rows:
            with self.tx() as conn:
                conn.execute(t.metrics.insert(), rows)

    def metric_history(self, run_id: str, key: str | None = None, after_id: int = 0) -> list[dict[str, Any]]:
        q = sa.select(t.metrics).where(t.metrics.c.run_id == run_id, t.metrics.c.id > after_id).order_by(t.metrics.c.id)
        if key:
            q = q.where(t.metrics.c.key == key)
        return self._rows(q)

    def add_event(self, run_id: str, kind: str, message: str, data: dict | None = None) -> None:
        with self.tx() as conn:
            conn.execute(t.events.insert().values(run_id=run_id, kind=kind, message=message, data=data, created_at=now()))

    def events(self, run_id: str) -> list[dict[str, Any]]:
        return self._rows(sa.select(t.events).where(t.events.c.run_id == run_id).order_by(t.events.c.id))
