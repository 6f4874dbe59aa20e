"""Per-annotator tokens: `trainyard label annotator add PROJECT NAME` prints a token once; the store keeps only its
SHA-256. The labelling page and its API take the token as the annotator's identity (and as access, beside the
dashboard's own token)."""

from __future__ import annotations

import hashlib
import secrets

import sqlalchemy as sa

from trainyard.errors import ConfigError
from trainyard.label.project import Project
from trainyard.registry import tables as t
from trainyard.registry.database import now
from trainyard.registry.names import check_name

T = t.label_annotators


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def add_annotator(store, project: Project, name: str) -> str:
    check_name(name, "annotator name")
    token = secrets.token_urlsafe(24)
    with store.tx() as conn:
        exists = conn.execute(sa.select(T.c.name).where(T.c.project == project.name, T.c.name == name)).first()
        if exists:
            raise ConfigError(f"Annotator {name!r} already has a token for project {project.name!r}.",
                              "choose another name; a lost token is replaced by adding the annotator under a new name.")
        conn.execute(T.insert().values(project=project.name, name=name, token_sha256=token_hash(token), created_at=now()))
    return token


def annotator_of(store, token: str | None) -> tuple[str, str] | None:
    """(project, annotator name) of a token, or None."""
    if not token:
        return None
    rows = store.fetch(sa.select(T.c.project, T.c.name).where(T.c.token_sha256 == token_hash(token)))
    return (rows[0]["project"], rows[0]["name"]) if rows else None


def list_annotators(store, project: Project) -> list[str]:
    return [r["name"] for r in store.fetch(sa.select(T.c.name).where(T.c.project == project.name).order_by(T.c.name))]
