"""A project's state in one dict: counts, classes, annotators, agreement, the learning curve, the estimate. Counted
in the database (the page asks every 2 s, and a project may hold 200,000 items)."""

from __future__ import annotations

import json
from collections import Counter

import sqlalchemy as sa

from trainyard.label import ledger
from trainyard.label.agreement import agreement
from trainyard.label.learner import labels_needed, rounds
from trainyard.label.project import Project
from trainyard.registry import tables as t

I = t.label_items


def _flag_sum(condition):
    return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)


def item_counts(store, name: str) -> dict:
    q = sa.select(sa.func.count().label("items"), sa.func.count(I.c.final).label("labelled"), sa.func.count(I.c.given).label("given"),
                  _flag_sum(I.c.n_labels > 0).label("by_annotators"), _flag_sum(I.c.conflict == 1).label("disagreements"),
                  _flag_sum(I.c.suspect == 1).label("suspects"), _flag_sum(I.c.copies > 1).label("double")).where(I.c.project == name)
    return {k: int(v or 0) for k, v in store.fetch(q)[0].items()}


def class_counts(store, name: str) -> dict:
    label = sa.cast(I.c.final, sa.Text)  # grouped as JSON text: PostgreSQL cannot compare json values
    rows = store.fetch(sa.select(label.label("label"), sa.func.count().label("n")).where(I.c.project == name, I.c.final.is_not(None))
                       .group_by(label))
    return {json.loads(r["label"]): int(r["n"]) for r in rows}


def project_status(store, project: Project) -> dict:
    counts = item_counts(store, project.name)
    notes = ledger.annotations(store, project)
    fitted = [r for r in rounds(store, project.name) if r["accuracy"] is not None]
    return {
        "project": project.name, "kind": project.kind, "source": project.source, "classes": project.classes,
        "settings": project.settings.to_dict(), **counts, "unlabelled": counts["items"] - counts["labelled"],
        "class_counts": class_counts(store, project.name),
        "annotators": dict(Counter(a["annotator"] for a in notes)),
        "agreement": agreement(notes, project.classes),
        "curve": [{"labels": r["labels"], "accuracy": r["accuracy"]} for r in fitted],
        "accuracy": fitted[-1]["accuracy"] if fitted else None,
        "rounds": len(rounds(store, project.name)),
        "labels_needed": labels_needed(fitted, project.settings.target_accuracy),
    }
