"""Labels, skips, undo and leases: every write one transaction, so a killed server or two annotators at once
lose or duplicate nothing.

A label row is never changed except to mark it retracted (undo). Each answer carries the client's request id:
a retried request finds its row and is not recorded twice. The item's summary (how many annotators labelled it,
its final label, whether they disagree) is rewritten in the same transaction as the label that changes it.
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import timedelta

import sqlalchemy as sa

from trainyard.errors import ConfigError, NotFoundError, suggest
from trainyard.label.project import Project, lock_project
from trainyard.registry import tables as t
from trainyard.registry.database import now
from trainyard.registry.names import check_name

I, A, L = t.label_items, t.label_annotations, t.label_leases
ADJUDICATION = "adjudication"
FILTER_QUEUES = ("review", ADJUDICATION)


class StaleItemError(ConfigError):
    """The item changed (or vanished) after it was shown."""


def check_label(project: Project, label) -> str:
    text = str(label)
    if text not in project.classes:
        raise ConfigError(f"{text!r} is not a class of project {project.name!r}.",
                          f"use one of {', '.join(project.classes)}; {suggest(text, project.classes)}")
    return text


def _item(conn, project: Project, item_id: int) -> dict:
    row = conn.execute(sa.select(I).where(I.c.project == project.name, I.c.id == int(item_id))).first()
    if row is None:
        raise NotFoundError(f"Project {project.name!r} has no item {item_id}.", "reload the page: the project may have been recreated.")
    return dict(row._mapping)


def record(store, project: Project, item_id: int, label, *, annotator: str, queue: str, item_sha256: str,
           comment: str | None = None, request_id: str | None = None, action: str = "label") -> dict:
    """Record one answer (a label, or a skip with label None); a repeated request_id returns the first answer."""
    check_name(annotator, "annotator name")
    label = check_label(project, label) if action == "label" else None
    request_id = request_id or uuid.uuid4().hex
    with store.tx() as conn:
        lock_project(conn, project.name)
        done = conn.execute(sa.select(A).where(A.c.project == project.name, A.c.request_id == request_id)).first()
        if done is not None:
            return dict(done._mapping)
        item = _item(conn, project, item_id)
        if item_sha256 != item["content_sha256"]:
            raise StaleItemError(f"Item {item['key']!r} changed since it was shown (version {item_sha256[:12]} is now "
                                 f"{item['content_sha256'][:12]}).", "label it again as it is now.")
        row = {"project": project.name, "item_id": item["id"], "request_id": request_id, "action": action, "label": label,
               "annotator": annotator, "queue": queue, "item_sha256": item_sha256, "comment": comment or None, "created_at": now()}
        row["id"] = conn.execute(A.insert().values(**row)).inserted_primary_key[0]
        conn.execute(L.delete().where(L.c.project == project.name, L.c.item_id == item["id"], L.c.annotator == annotator))
        summarise(conn, project, item)
    return row


def undo(store, project: Project, annotator: str) -> dict | None:
    """Retract the annotator's latest label; the item (leased back to them) or None when there is nothing to undo."""
    with store.tx() as conn:
        lock_project(conn, project.name)
        last = conn.execute(sa.select(A).where(A.c.project == project.name, A.c.annotator == annotator, A.c.action == "label",
                                               A.c.retracted_at.is_(None)).order_by(A.c.id.desc()).limit(1)).first()
        if last is None:
            return None
        conn.execute(A.update().where(A.c.id == last.id).values(retracted_at=now()))
        item = _item(conn, project, last.item_id)
        summarise(conn, project, item)
        _lease(conn, project, item["id"], annotator)
        return {**dict(last._mapping), "item_id": item["id"]}


def summarise(conn, project: Project, item: dict) -> None:
    """Rewrite the item's count of annotators, final label and conflict flag from its live labels."""
    live = conn.execute(sa.select(A.c.annotator, A.c.label, A.c.queue).where(
        A.c.project == project.name, A.c.item_id == item["id"], A.c.action == "label", A.c.retracted_at.is_(None)).order_by(A.c.id)).all()
    latest = {}
    adjudicated = None
    for annotator, label, queue in live:
        if queue == ADJUDICATION:
            adjudicated = label
        else:
            latest[annotator] = label
    votes = Counter(latest.values()).most_common()
    conflict = len(votes) > 1 and adjudicated is None
    if adjudicated is not None:
        final = adjudicated
    elif votes and (len(votes) == 1 or votes[0][1] > votes[1][1]):
        final = votes[0][0]
    else:
        final = None if votes else item["given"]
    conn.execute(I.update().where(I.c.id == item["id"]).values(n_labels=len(latest), final=final, conflict=int(conflict)))


def _lease(conn, project: Project, item_id: int, annotator: str) -> None:
    conn.execute(L.delete().where(L.c.project == project.name, L.c.annotator == annotator))
    conn.execute(L.insert().values(project=project.name, item_id=item_id, annotator=annotator,
                                   expires_at=now() + timedelta(seconds=project.settings.lease_seconds)))


def claim(store, project: Project, annotator: str, queue: str | None = None) -> dict | None:
    """The next item for `annotator` from `queue` (the project's by default), leased to them; None when none is left.

    An item goes to as many annotators as it needs (`copies`: two for the overlap share) and never to one who
    answered it; while leased to one annotator it is not offered to another unless it needs two.
    """
    check_name(annotator, "annotator name")
    queue = queue or project.settings.queue
    stamp = now()
    with store.tx() as conn:
        lock_project(conn, project.name)
        conn.execute(L.delete().where(L.c.project == project.name, L.c.expires_at < stamp))
        conn.execute(L.delete().where(L.c.project == project.name, L.c.annotator == annotator))
        answered = sa.select(A.c.id).where(A.c.item_id == I.c.id, A.c.annotator == annotator, A.c.retracted_at.is_(None))
        if queue == ADJUDICATION:
            answered = answered.where(A.c.queue == ADJUDICATION)
        held = sa.select(sa.func.count()).select_from(L).where(L.c.item_id == I.c.id, L.c.annotator != annotator).scalar_subquery()
        q = sa.select(I.c.id).where(I.c.project == project.name, ~sa.exists(answered))
        if queue == ADJUDICATION:
            q = q.where(I.c.conflict == 1, held == 0).order_by(I.c.position)
        elif queue == "review":
            q = q.where(I.c.suspect == 1, I.c.n_labels == 0, held == 0).order_by(I.c.confidence.desc(), I.c.position)
        else:
            q = q.where(I.c.given.is_(None), I.c.n_labels + held < I.c.copies).order_by(I.c.priority.desc(), I.c.position)
        chosen = conn.execute(q.limit(1)).first()
        if chosen is None:
            return None
        _lease(conn, project, chosen.id, annotator)
        return _item(conn, project, chosen.id)


def get_item(store, project: Project, item_id: int) -> dict | None:
    rows = store.fetch(sa.select(I).where(I.c.project == project.name, I.c.id == int(item_id)))
    return rows[0] if rows else None


def release(store, project: Project, annotator: str) -> None:
    with store.tx() as conn:
        conn.execute(L.delete().where(L.c.project == project.name, L.c.annotator == annotator))


def item_labels(store, project: Project, item_id: int) -> list[dict]:
    """The live labels of one item (who said what), oldest first."""
    return store.fetch(sa.select(A.c.annotator, A.c.label, A.c.queue, A.c.comment, A.c.created_at).where(
        A.c.project == project.name, A.c.item_id == int(item_id), A.c.action == "label", A.c.retracted_at.is_(None)).order_by(A.c.id))


def annotations(store, project: Project) -> list[dict]:
    """Every live label of the project (item key, annotator, label, queue, version, comment, time), oldest first."""
    q = (sa.select(I.c.key, A.c.item_id, A.c.annotator, A.c.label, A.c.queue, A.c.item_sha256, A.c.comment, A.c.created_at)
         .join(I, I.c.id == A.c.item_id)
         .where(A.c.project == project.name, A.c.action == "label", A.c.retracted_at.is_(None)).order_by(A.c.id))
    return store.fetch(q)


def labels_since(store, project: Project, after_id: int) -> int:
    return int(store.fetch(sa.select(sa.func.count().label("n")).select_from(A).where(
        A.c.project == project.name, A.c.action == "label", A.c.id > after_id))[0]["n"])


def last_annotation_id(store, project: Project) -> int:
    rows = store.fetch(sa.select(sa.func.max(A.c.id).label("m")).where(A.c.project == project.name))
    return int(rows[0]["m"] or 0)
