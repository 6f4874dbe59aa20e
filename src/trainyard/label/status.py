"""A project's state in one dict: counts, classes, annotators, agreement, the learning curve, the estimate."""

from __future__ import annotations

from collections import Counter

from trainyard.label import ledger
from trainyard.label.agreement import agreement
from trainyard.label.learner import labels_needed, rounds
from trainyard.label.project import Project, items_frame


def project_status(store, project: Project) -> dict:
    items = items_frame(store, project.name, ("id", "given", "final", "n_labels", "conflict", "suspect", "copies"))
    notes = ledger.annotations(store, project)
    curve = rounds(store, project.name)
    fitted = [r for r in curve if r["accuracy"] is not None]
    labelled = int(items["final"].notna().sum())
    return {
        "project": project.name, "kind": project.kind, "source": project.source, "classes": project.classes,
        "settings": project.settings.to_dict(),
        "items": len(items), "labelled": labelled, "by_annotators": int((items["n_labels"] > 0).sum()),
        "given": int(items["given"].notna().sum()), "unlabelled": int(items["final"].isna().sum()),
        "disagreements": int(items["conflict"].sum()), "suspects": int(items["suspect"].sum()),
        "double": int((items["copies"] > 1).sum()),
        "class_counts": {c: int(n) for c, n in Counter(items["final"].dropna()).items()},
        "annotators": dict(Counter(a["annotator"] for a in notes)),
        "agreement": agreement(notes, project.classes),
        "curve": [{"labels": r["labels"], "accuracy": r["accuracy"]} for r in fitted],
        "accuracy": fitted[-1]["accuracy"] if fitted else None,
        "rounds": len(curve),
        "labels_needed": labels_needed(fitted, project.settings.target_accuracy),
    }
