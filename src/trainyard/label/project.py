"""Labelling projects in the workspace store: create one from data, read it back, list its items.

    create_project(ws, "tickets", Path("tickets.csv"), classes=["billing", "bug"], text_col="body")
    project = get_project(ws.store, "tickets")
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from trainyard.errors import ConfigError, DataError, NotFoundError
from trainyard.label.items import Item, read_items
from trainyard.label.settings import LabelSettings
from trainyard.registry import tables as t
from trainyard.registry.database import now
from trainyard.registry.names import check_name

MAX_CLASSES = 50


@dataclass(frozen=True)
class Project:
    name: str
    kind: str  # table, text, image
    source: str
    classes: list
    target: str | None
    text_col: str | None
    id_col: str | None
    settings: LabelSettings
    features_sha256: str | None = None

    @property
    def label_column(self) -> str:
        """The column the labels go in when the project becomes a table (its --target, else `label`)."""
        return self.target or "label"


def parse_classes(text: str | list | None) -> list[str] | None:
    if text is None:
        return None
    names = [c.strip() for c in (text.split(",") if isinstance(text, str) else text) if str(c).strip()]
    if len(names) < 2:
        raise ConfigError(f"--classes needs at least two classes, got {names or 'none'}.", "list them comma-separated, e.g. --classes billing,bug,other.")
    if len(set(names)) != len(names):
        raise ConfigError("--classes names a class twice.", "list each class once, e.g. --classes billing,bug,other.")
    if len(names) > MAX_CLASSES:
        raise ConfigError(f"--classes lists {len(names)} classes; a project has at most {MAX_CLASSES}.", "merge rare classes into 'other'.")
    return names


FEATURES_OF = {"table": ("auto", "prepared", "tfidf", "minilm"), "text": ("auto", "minilm", "tfidf"), "image": ("auto", "pixels", "backbone")}


def _check_features(kind: str, features: str) -> None:
    if features not in FEATURES_OF[kind]:
        raise ConfigError(f"--features {features} does not apply to {kind} items.", f"use one of {', '.join(FEATURES_OF[kind])}.")


def _classes_for(items: list[Item], classes: list[str] | None, source: str) -> list[str]:
    """The given classes, checked against the labels the data came with; without --classes, those labels."""
    given = sorted({i.given for i in items if i.given is not None})
    if classes is None:
        if len(given) < 2:
            raise ConfigError(f"No classes: --classes is not given and {source} brings {len(given)} label value(s).",
                              "name the classes, e.g. --classes billing,bug,other.")
        if len(given) > MAX_CLASSES:
            raise DataError(f"The labels in {source} take {len(given)} values; a project has at most {MAX_CLASSES} classes.",
                            "is --target the right column? Classification needs a few classes, not a number per row.")
        return given
    unknown = [g for g in given if g not in classes]
    if unknown:
        shown = ", ".join(repr(u) for u in unknown[:5])
        raise DataError(f"The data's labels include {shown}, which --classes does not list.",
                        f"add them to --classes, or fix those labels in the data (classes: {', '.join(classes)}).")
    return classes


def create_project(ws, name: str, data: Path, *, classes: list[str] | None = None, target: str | None = None,
                   text_col: str | None = None, id_col: str | None = None, settings: LabelSettings | None = None) -> Project:
    """Read `data` into items and record the project and all its items in one transaction."""
    check_name(name, "project name")
    store = ws.store
    if _project_row(store, name) is not None:
        raise ConfigError(f"A labelling project named {name!r} exists already.", "choose another name, or keep labelling it: trainyard label " + name)
    settings = settings or LabelSettings()
    kind, items = read_items(Path(data), target, text_col, id_col)
    _check_features(kind, settings.features)
    classes = _classes_for(items, classes, str(data))
    project = Project(name, kind, str(Path(data).resolve()), classes, target, text_col, id_col, settings)
    rng = random.Random(settings.seed)
    stamp = now()
    rows = [{"project": name, "position": pos, "key": it.key, "content_sha256": it.content_sha256, "data": it.data,
             "given": it.given, "final": it.given, "copies": 2 if rng.random() < settings.overlap else 1, "n_labels": 0,
             "conflict": 0, "priority": random_priority(name, settings.seed, pos), "suspect": 0}
            for pos, it in enumerate(items)]
    with store.tx() as conn:
        lock_project(conn, name)
        conn.execute(t.label_projects.insert().values(
            name=name, kind=kind, source=project.source, classes=classes, target=target, text_col=text_col, id_col=id_col,
            settings=settings.to_dict(), created_at=stamp))
        for start in range(0, len(rows), 5000):
            conn.execute(t.label_items.insert(), rows[start:start + 5000])
    return project


def random_priority(name: str, seed: int, position: int) -> float:
    """The random queue's order, in [0, 1): a fixed shuffle of the items (a hash of project, seed and position);
    the other queues put the items they choose above it."""
    return zlib.crc32(f"{seed}:{name}:{position}".encode()) / 2**32


def lock_project(conn, name: str) -> None:
    """Serialise writers of one project. SQLite's BEGIN IMMEDIATE already does; PostgreSQL takes an advisory lock."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": 7_327_100_000 + zlib.crc32(name.encode())})


def _project_row(store, name: str) -> dict | None:
    rows = store.fetch(sa.select(t.label_projects).where(t.label_projects.c.name == name))
    return rows[0] if rows else None


def get_project(store, name: str) -> Project:
    check_name(name, "project name")
    row = _project_row(store, name)
    if row is None:
        known = [r["name"] for r in store.fetch(sa.select(t.label_projects.c.name))]
        hint = f" Projects here: {', '.join(known)}." if known else ""
        raise NotFoundError(f"No labelling project named {name!r}.{hint}",
                            f"create it: trainyard label create {name} --data FILE --classes A,B")
    return Project(row["name"], row["kind"], row["source"], list(row["classes"]), row["target"], row["text_col"], row["id_col"],
                   LabelSettings.from_dict(row["settings"]), row["features_sha256"])


def list_projects(store) -> list[str]:
    return [r["name"] for r in store.fetch(sa.select(t.label_projects.c.name).order_by(t.label_projects.c.name))]


def update_settings(store, project: Project, settings: LabelSettings) -> Project:
    with store.tx() as conn:
        conn.execute(t.label_projects.update().where(t.label_projects.c.name == project.name).values(settings=settings.to_dict()))
    return get_project(store, project.name)


def set_features_hash(store, name: str, sha: str) -> None:
    with store.tx() as conn:
        conn.execute(t.label_projects.update().where(t.label_projects.c.name == name).values(features_sha256=sha))


def items_frame(store, name: str, columns: tuple[str, ...] = ("id", "position", "key", "content_sha256", "data", "given", "final",
                                                             "n_labels", "conflict", "suggestion", "confidence", "suspect")):
    """The project's items, in position order, as a DataFrame."""
    import pandas as pd

    cols = [t.label_items.c[c] for c in columns]
    rows = store.fetch(sa.select(*cols).where(t.label_items.c.project == name).order_by(t.label_items.c.position))
    return pd.DataFrame(rows, columns=list(columns))
