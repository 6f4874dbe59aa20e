"""`TRAINYARD_DB` as people write it, turned into a URL SQLAlchemy can open.

SQLAlchemy 2.1 reads a bare `postgresql://` as psycopg (version 3); trainyard's `postgres` extra installs
psycopg2. A URL that names no driver gets the one that is installed (psycopg first, then psycopg2), so the
README's `TRAINYARD_DB=postgresql://user@host/db` works with either; `postgres://` (as some hosts print it)
is read as `postgresql://`. A URL that names its driver (`postgresql+psycopg2://`) is used as written.
"""

from __future__ import annotations

import importlib.util

from trainyard.errors import ConfigError

DRIVERS = (("psycopg", "psycopg"), ("psycopg2", "psycopg2"))  # (module, SQLAlchemy driver name), preferred first


def with_driver(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("postgresql", "postgres"):
        return url
    for module, driver in DRIVERS:
        if importlib.util.find_spec(module) is not None:
            return f"postgresql+{driver}://{rest}"
    raise ConfigError("TRAINYARD_DB names a PostgreSQL server, but no PostgreSQL driver (psycopg or psycopg2) is installed.",
                      "pip install 'trainyard[postgres]'.")
