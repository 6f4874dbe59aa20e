"""The database under the store: engines, schema, transactions (the store's parts are in run_records.py,
model_versions.py and prediction_log.py; store.py joins them).

One `Store` per database URL. Writes are short transactions; on SQLite they
start with BEGIN IMMEDIATE (WAL journal, 60 s busy timeout) so that several
processes training into one workspace queue up instead of failing or
corrupting the file.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from trainyard.errors import ConfigError
from trainyard.registry import tables as t
from trainyard.registry.dburl import with_driver
from trainyard.registry.names import check_name


def now() -> datetime:
    return datetime.now(timezone.utc)


def parse_ref(ref: str) -> tuple[str, str | None]:
    """'churn' -> ('churn', None); 'churn@3' -> ('churn', '3'); 'churn@production' -> ('churn', 'production')."""
    name, _, selector = str(ref).partition("@")
    if not name:
        raise ConfigError(f"'{ref}' is not a model reference.", "write NAME, NAME@VERSION or NAME@ALIAS, e.g. churn@3.")
    check_name(name)
    if selector and not selector.isdigit() and selector != "latest":
        check_name(selector, "alias")
    return name, (selector or None)


class Database:
    """The engines (a writer and an autocommit reader), the schema, transactions."""

    def __init__(self, url: str):
        url = with_driver(url)
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

    def fetch(self, query) -> list[dict[str, Any]]:
        """The rows of a read-only query, as dicts, on the reader (it never waits for a writer)."""
        return self._rows(query)


def _sqlite_on_connect(dbapi_conn, _record) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN IMMEDIATE instead of pysqlite's deferred BEGIN.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=60000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()
