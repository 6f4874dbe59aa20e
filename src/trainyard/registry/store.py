"""The store: runs, trials, metrics, events, model versions, aliases, predictions, labels.

One `Store` per database URL. Writes are short transactions; on SQLite they
start with BEGIN IMMEDIATE (WAL journal, 60 s busy timeout) so that several
processes training into one workspace queue up instead of failing or
corrupting the file.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from trainyard.errors import ConfigError, NotFoundError, suggest
from trainyard.registry import tables as t


def now() -> datetime:
    return datetime.now(timezone.utc)


def parse_ref(ref: str) -> tuple[str, str | None]:
    """'churn' -> ('churn', None); 'churn@3' -> ('churn', '3'); 'churn@production' -> ('churn', 'production')."""
    name, _, selector = ref.partition("@")
    if not name:
        raise ConfigError(f"'{ref}' is not a model reference.", "write NAME, NAME@VERSION or NAME@ALIAS, e.g. churn@3.")
    return name, (selector or None)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Store:
    def __init__(self, url: str):
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            self.engine = sa.create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})
            event.listen(self.engine, "connect", _sqlite_on_connect)
            event.listen(self.engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
            # Readers run in autocommit on their own engine: they never take the write lock.
            self.reader = sa.create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})
            event.listen(self.reader, "connect", _sqlite_on_connect)
        else:
            self.engine = sa.create_engine(url, pool_pre_ping=True)
            self.reader = self.engine
        if not self._schema_present():  # opening an existing workspace never waits for a writer's lock
            with self.engine.begin() as conn:
                if self.engine.dialect.name == "postgresql":  # two processes creating the tables at once
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(7327001)"))
                t.metadata.create_all(conn)

    def _schema_present(self) -> bool:
        try:
            return set(t.metadata.tables) <= set(sa.inspect(self.reader).get_table_names())
        except sa.exc.SQLAlchemyError:
            return False

    @contextmanager
    def tx(self) -> Iterator[sa.Connection]:
        with self.engine.begin() as conn:
            yield conn

    def _rows(self, query) -> list[dict[str, Any]]:
        with self.reader.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    # runs ----------------------------------------------------------------
    def create_run(self, name: str, *, kind: str = "tabular", **fields: Any) -> str:
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
            self.update_run(run_id, status="interrupted", error="interrupted by the user")
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

    # models ----------------------------------------------------------------
    def register_model(self, name: str, *, artifact_path: str, meta_sha256: str, **fields: Any) -> int:
        """Record a new version of `name`; the version number is allocated inside the transaction.

        SQLite serialises writers (BEGIN IMMEDIATE); on PostgreSQL a transaction-scoped advisory lock on the
        name does the same, and a unique violation (another writer won) is retried.
        """

        def attempt(conn) -> int:
            self._lock_name(conn, name)
            latest = conn.execute(sa.select(sa.func.max(t.models.c.version)).where(t.models.c.name == name)).scalar()
            version = (latest or 0) + 1
            conn.execute(t.models.insert().values(name=name, version=version, artifact_path=artifact_path,
                                                  meta_sha256=meta_sha256, created_at=now(), **fields))
            return version

        return self._retry(attempt)

    def _lock_name(self, conn, name: str) -> None:
        if self.engine.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext(:n))"), {"n": name})

    def _retry(self, fn, attempts: int = 20):
        """Run fn(conn) in a transaction, again if a concurrent writer made it violate a unique key."""
        for i in range(attempts):
            try:
                with self.tx() as conn:
                    return fn(conn)
            except sa.exc.IntegrityError:
                if i == attempts - 1:
                    raise
                time.sleep(0.01 * (i + 1))

    def model_names(self) -> list[str]:
        with self.reader.connect() as conn:
            return list(conn.execute(sa.select(t.models.c.name).distinct().order_by(t.models.c.name)).scalars())

    def list_models(self, name: str | None = None) -> list[dict[str, Any]]:
        q = sa.select(t.models).order_by(t.models.c.name, t.models.c.version.desc())
        if name:
            q = q.where(t.models.c.name == name)
        rows = self._rows(q)
        alias_rows = self._rows(sa.select(t.aliases))
        by_version: dict[tuple[str, int], list[str]] = {}
        for a in alias_rows:
            by_version.setdefault((a["name"], a["version"]), []).append(a["alias"])
        for r in rows:
            r["aliases"] = sorted(by_version.get((r["name"], r["version"]), []))
        return rows

    def resolve_model(self, ref: str) -> dict[str, Any]:
        """The model row for NAME (latest), NAME@VERSION or NAME@ALIAS."""
        name, selector = parse_ref(ref)
        rows = self.list_models(name)
        if not rows:
            names = self.model_names()
            hint = suggest(name, names) if names else "this workspace has no models yet: train one with `trainyard train`."
            raise NotFoundError(f"No model named '{name}' in this workspace.", "see `trainyard models`; " + hint)
        if selector is None or selector == "latest":
            return rows[0]
        if selector.isdigit():
            for r in rows:
                if r["version"] == int(selector):
                    return r
            versions = ", ".join(str(r["version"]) for r in rows)
            raise NotFoundError(f"Model '{name}' has no version {selector}.", f"its versions are {versions}.")
        for r in rows:
            if selector in r["aliases"]:
                return r
        known = sorted({a for r in rows for a in r["aliases"]})
        raise NotFoundError(
            f"Model '{name}' has no alias '{selector}'.",
            ("its aliases are " + ", ".join(known) + ".") if known else f"set one with `trainyard promote {name}@VERSION --alias {selector}`.",
        )

    def set_alias(self, name: str, alias: str, version: int) -> int | None:
        """Point `alias` at `version` (promote, or roll back to an older one); returns the version it pointed at before."""
        if not alias or alias.isdigit() or alias == "latest" or "@" in alias:
            raise ConfigError(f"'{alias}' cannot be an alias.", "use a name such as production or staging.")
        self.get_model(name, version)  # clear error for an unknown version

        def attempt(conn) -> int | None:
            self._lock_name(conn, name)
            previous = conn.execute(sa.select(t.aliases.c.version).where(t.aliases.c.name == name, t.aliases.c.alias == alias)).scalar()
            conn.execute(t.aliases.delete().where(t.aliases.c.name == name, t.aliases.c.alias == alias))
            conn.execute(t.aliases.insert().values(name=name, alias=alias, version=version, updated_at=now()))
            return previous

        return self._retry(attempt)

    def remove_alias(self, name: str, alias: str) -> None:
        with self.tx() as conn:
            gone = conn.execute(t.aliases.delete().where(t.aliases.c.name == name, t.aliases.c.alias == alias)).rowcount
        if not gone:
            raise NotFoundError(f"Model '{name}' has no alias '{alias}'.", f"see `trainyard models {name}`.")

    def get_model(self, name: str, version: int) -> dict[str, Any]:
        return self.resolve_model(f"{name}@{int(version)}")

    def alias_version(self, name: str, alias: str) -> int | None:
        """The version an alias points at now (one indexed read: what a serving process polls)."""
        with self.reader.connect() as conn:
            return conn.execute(sa.select(t.aliases.c.version).where(t.aliases.c.name == name, t.aliases.c.alias == alias)).scalar()

    def latest_version(self, name: str) -> int | None:
        with self.reader.connect() as conn:
            return conn.execute(sa.select(sa.func.max(t.models.c.version)).where(t.models.c.name == name)).scalar()

    def set_tags(self, name: str, version: int, set_: dict[str, str] | None = None, remove: list[str] | None = None) -> dict[str, str]:
        """Merge `set_` into a version's tags and drop the keys in `remove`; returns the new tags."""
        row = self.get_model(name, version)
        missing = [k for k in (remove or []) if k not in (row["tags"] or {})]
        if missing:
            raise NotFoundError(f"{name}@{version} has no tag {', '.join(map(repr, missing))}.",
                                "its tags are " + (", ".join(sorted(row["tags"] or {})) or "none") + ".")
        with self.tx() as conn:
            current = conn.execute(sa.select(t.models.c.tags).where(t.models.c.id == row["id"])).scalar() or {}
            tags = {k: v for k, v in {**current, **(set_ or {})}.items() if k not in set(remove or [])}
            conn.execute(t.models.update().where(t.models.c.id == row["id"]).values(tags=tags))
        return tags

    def delete_model_version(self, name: str, version: int, *, force: bool = False) -> dict[str, Any]:
        """Remove a version's row (and its aliases with `force`); returns the row so the caller can delete the files."""
        row = self.get_model(name, version)
        if row["aliases"] and not force:
            raise ConfigError(
                f"{name}@{version} is what the alias(es) {', '.join(row['aliases'])} point at.",
                f"promote another version to {'them' if len(row['aliases']) > 1 else 'it'} first, or pass --force to delete the aliases too.",
            )
        with self.tx() as conn:
            conn.execute(t.aliases.delete().where(t.aliases.c.name == name, t.aliases.c.version == version))
            conn.execute(t.models.delete().where(t.models.c.id == row["id"]))
        return row

    # prediction log ----------------------------------------------------------
    def log_predictions(self, rows: list[dict[str, Any]], *, encoded: bool = False) -> None:
        """Append prediction-log rows (request_id, model_name, version, inputs, outputs[, created_at]) in one transaction.

        encoded=True: inputs and outputs are already JSON text (the model server encodes them in C with orjson),
        written as they are instead of through SQLAlchemy's per-value json.dumps."""
        if not rows:
            return
        stamp = now()
        if not encoded:
            with self.tx() as conn:
                conn.execute(t.predictions.insert(), [{"created_at": stamp, **r} for r in rows])
            return

        def text(name: str, column):
            param = sa.bindparam(f"{name}_text", type_=sa.Text)
            return sa.cast(param, column.type) if self.engine.dialect.name == "postgresql" else param

        c = t.predictions.c
        stmt = t.predictions.insert().values(inputs=text("inputs", c.inputs), outputs=text("outputs", c.outputs))
        params = [{"created_at": stamp, **{k: v for k, v in r.items() if k not in ("inputs", "outputs")},
                   "inputs_text": r["inputs"], "outputs_text": r["outputs"]} for r in rows]
        with self.tx() as conn:
            conn.execute(stmt, params)

    def list_predictions(self, model_name: str, *, limit: int = 1000, request_id: str | None = None) -> list[dict[str, Any]]:
        q = sa.select(t.predictions).where(t.predictions.c.model_name == model_name).order_by(t.predictions.c.id.desc()).limit(limit)
        if request_id:
            q = q.where(t.predictions.c.request_id == request_id)
        return self._rows(q)

    def predictions(self, model_name: str, *, since: datetime | None = None, until: datetime | None = None,
                    limit: int | None = None, version: int | None = None) -> list[dict[str, Any]]:
        """Logged predictions of a model, oldest first; `limit` keeps the latest ones."""
        q = sa.select(t.predictions).where(t.predictions.c.model_name == model_name)
        if since is not None:
            q = q.where(t.predictions.c.created_at >= since)
        if until is not None:
            q = q.where(t.predictions.c.created_at < until)
        if version is not None:
            q = q.where(t.predictions.c.version == version)
        rows = self._rows(q.order_by(t.predictions.c.created_at.desc(), t.predictions.c.id.desc()).limit(limit))
        return rows[::-1]

    def add_labels(self, model_name: str, rows: list[dict[str, Any]]) -> int:
        """Record late labels ({request_id, label[, created_at]}); a later label for a request replaces an earlier one."""
        if not rows:
            return 0
        stamp = now()
        with self.tx() as conn:
            ids = list({r["request_id"] for r in rows})
            for i in range(0, len(ids), 500):
                conn.execute(t.labels.delete().where(t.labels.c.model_name == model_name, t.labels.c.request_id.in_(ids[i:i + 500])))
            conn.execute(t.labels.insert(), [{"created_at": stamp, **r, "model_name": model_name} for r in rows])
        return len(rows)

    def labels(self, model_name: str, request_ids: list[str] | None = None) -> list[dict[str, Any]]:
        q = sa.select(t.labels).where(t.labels.c.model_name == model_name).order_by(t.labels.c.id)
        if request_ids is None:
            return self._rows(q)
        out: list[dict[str, Any]] = []
        for i in range(0, len(request_ids), 500):
            out.extend(self._rows(q.where(t.labels.c.request_id.in_(request_ids[i:i + 500]))))
        return out

def _sqlite_on_connect(dbapi_conn, _record) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN IMMEDIATE instead of pysqlite's deferred BEGIN.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=60000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()
