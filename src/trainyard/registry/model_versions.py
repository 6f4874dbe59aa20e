"""Model versions, aliases and tags: the registry part of the store."""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa

from trainyard.errors import ConfigError, NotFoundError, suggest
from trainyard.registry import tables as t
from trainyard.registry.database import now, parse_ref
from trainyard.registry.names import check_alias, check_name, check_tag_value

# The tag a version gets when its test score is no better than the naive baseline's: `NAME` alone then resolves
# to the latest version without it, so such a model never replaces a better one as the default.
BASELINE_TAG, NOT_BEATEN = "baseline", "not-beaten"


class ModelVersions:
    """The registry part of the store (mixed into `Store`, which provides `tx` and `_rows`)."""

    # models ----------------------------------------------------------------
    def register_model(self, name: str, *, artifact_path: str, meta_sha256: str, **fields: Any) -> int:
        """Record a new version of `name`; the version number is allocated inside the transaction.

        SQLite serialises writers (BEGIN IMMEDIATE); on PostgreSQL a transaction-scoped advisory lock on the
        name does the same, and a unique violation (another writer won) is retried.
        """
        check_name(name)

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
        if selector is None:  # the latest version that beat its baseline, when there is one (issue 16, item 20)
            return next((r for r in rows if (r.get("tags") or {}).get(BASELINE_TAG) != NOT_BEATEN), rows[0])
        if selector == "latest":
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
        check_alias(alias)
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
        for key, value in (set_ or {}).items():
            check_name(key, "tag name")
            check_tag_value(value)
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
