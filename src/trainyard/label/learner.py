"""The active-learning loop: a fast model (logistic regression on the item features) retrained every K new
labels, its held-out accuracy (cross-validated on the labels so far: the learning curve), the pool rescored
(suggestion, confidence, the queue's order, suspected label errors), all written in one transaction.

`Retrainer` runs rounds in a background thread so that the page never waits for one.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import sqlalchemy as sa

from trainyard.label import queues
from trainyard.label.features import project_features
from trainyard.label.project import Project, get_project, items_frame, lock_project, random_priority
from trainyard.registry import tables as t
from trainyard.registry.database import now

QUEUE_BATCH = 50  # items ordered by the queue after each round (the rest follow the random order)
MODEL_NAME = "logistic regression"


def make_model(seed: int):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=500, C=1.0, random_state=seed))


def fit_and_score(X: np.ndarray, y: np.ndarray, labelled: np.ndarray, n_classes: int, seed: int = 0):
    """(probabilities for every row or None, cross-validated accuracy or None, out-of-fold probabilities of the labelled rows)."""
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    present = np.unique(y[labelled])
    if len(present) < 2:
        return None, None, None
    model = make_model(seed).fit(X[labelled], y[labelled])
    proba = np.zeros((len(X), n_classes))
    proba[:, model.classes_] = model.predict_proba(X)
    counts = np.bincount(y[labelled], minlength=n_classes)
    folds = int(min(5, counts[counts > 0].min()))
    if folds < 2:
        return proba, None, None
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    oof = np.zeros((labelled.sum(), n_classes))
    oof[:, present] = cross_val_predict(make_model(seed), X[labelled], y[labelled], cv=cv, method="predict_proba")
    accuracy = float(np.mean(oof.argmax(axis=1) == y[labelled]))
    return proba, accuracy, oof


def run_round(ws, name: str, progress=None) -> dict:
    """Train on the labels so far, rescore every item, record the round; returns the round's row."""
    started = time.perf_counter()
    project = get_project(ws.store, name)
    X = project_features(ws, project, progress)
    items = items_frame(ws.store, name, ("id", "position", "content_sha256", "final", "given", "n_labels", "priority"))
    codes = {c: i for i, c in enumerate(project.classes)}
    y = np.array([codes.get(v, -1) if v is not None else -1 for v in items["final"]])
    labelled = y >= 0
    proba, accuracy, oof = fit_and_score(X, y, labelled, len(project.classes), project.settings.seed)
    pool = np.flatnonzero(~labelled & items["given"].isna().to_numpy())
    base = np.array([random_priority(name, project.settings.seed, k) for k in items["position"]])
    prio = queues.priorities(project.settings.queue, pool=pool, labelled=np.flatnonzero(labelled), X=X, proba=proba,
                             measure=project.settings.uncertainty, batch=QUEUE_BATCH, seed=project.settings.seed + int(labelled.sum()),
                             n_items=len(items), base=base)
    suspect = np.zeros(len(items), dtype=int)
    reviewable = np.flatnonzero(labelled & (items["n_labels"].to_numpy() == 0))  # given labels nobody has checked
    if oof is not None:
        rows = np.flatnonzero(labelled)
        flagged = rows[queues.suspects(y[labelled], oof)]
        suspect[np.intersect1d(flagged, reviewable)] = 1
    suspect[np.intersect1d(conflicting_duplicates(items), reviewable)] = 1
    _write_round(ws.store, project, items, proba, prio, suspect, int(labelled.sum()), accuracy, time.perf_counter() - started)
    return {"labels": int(labelled.sum()), "accuracy": accuracy, "suspects": int(suspect.sum())}


def conflicting_duplicates(items) -> np.ndarray:
    """Positions of items whose exact content appears again with another label."""
    labelled = items[items["final"].notna()]
    spread = labelled.groupby("content_sha256")["final"].nunique()
    clash = set(spread[spread > 1].index)
    return np.flatnonzero(items["content_sha256"].isin(clash).to_numpy() & items["final"].notna().to_numpy())


def _write_round(store, project: Project, items, proba, prio, suspect, n_labels: int, accuracy, seconds: float) -> None:
    I = t.label_items
    stmt = I.update().where(I.c.id == sa.bindparam("b_id")).values(
        suggestion=sa.bindparam("b_sug"), confidence=sa.bindparam("b_conf"), priority=sa.bindparam("b_prio"), suspect=sa.bindparam("b_sus"))
    params = []
    for k, item_id in enumerate(items["id"]):
        sug = None if proba is None else project.classes[int(proba[k].argmax())]
        conf = None if proba is None else float(proba[k].max())
        params.append({"b_id": int(item_id), "b_sug": sug, "b_conf": conf, "b_prio": float(prio[k]), "b_sus": int(suspect[k])})
    with store.tx() as conn:
        lock_project(conn, project.name)
        for start in range(0, len(params), 5000):
            conn.execute(stmt, params[start:start + 5000])
        conn.execute(t.label_rounds.insert().values(project=project.name, labels=n_labels, accuracy=accuracy,
                                                    model=MODEL_NAME if proba is not None else None, seconds=seconds, created_at=now()))


def rounds(store, name: str) -> list[dict]:
    R = t.label_rounds
    return store.fetch(sa.select(R.c.labels, R.c.accuracy, R.c.model, R.c.seconds, R.c.created_at)
                       .where(R.c.project == name).order_by(R.c.id))


def labelled_count(store, name: str) -> int:
    I = t.label_items
    return int(store.fetch(sa.select(sa.func.count().label("n")).where(I.c.project == name, I.c.final.is_not(None)))[0]["n"])


def labels_needed(curve: list[dict], target: float) -> int | None:
    """Labels still needed to reach `target` held-out accuracy, from a power law fitted to the learning curve
    (error = a * labels^-b); None while the curve has under three points or does not fall."""
    points = [(r["labels"], 1.0 - r["accuracy"]) for r in curve if r.get("accuracy") is not None and r["labels"] > 0]
    if not points:
        return None
    n_now, err_now = points[-1]
    if 1.0 - err_now >= target:
        return 0
    usable = [(n, e) for n, e in points if e > 0]
    if len(usable) < 3:
        return None
    slope, intercept = np.polyfit(np.log([n for n, _ in usable]), np.log([e for _, e in usable]), 1)
    if slope >= -1e-3:
        return None
    needed = float(np.exp((np.log(1.0 - target) - intercept) / slope))
    return max(int(np.ceil(needed - n_now)), 0) if np.isfinite(needed) else None


class Retrainer:
    """Background rounds for one workspace: `poke(name)` starts a round when K new labels arrived (or `force`)
    and returns at once; one round per project at a time, the latest state wins."""

    def __init__(self, ws):
        self.ws = ws
        self._lock = threading.Lock()
        self._running: dict[str, threading.Thread] = {}
        self._again: set[str] = set()
        self.errors: dict[str, str] = {}

    def due(self, name: str) -> bool:
        project = get_project(self.ws.store, name)
        past = rounds(self.ws.store, name)
        done = past[-1]["labels"] if past else 0
        return not past or labelled_count(self.ws.store, name) - done >= project.settings.retrain_every

    def poke(self, name: str, force: bool = False) -> bool:
        with self._lock:
            if name in self._running:
                if force:
                    self._again.add(name)
                return False
            if not force and not self.due(name):
                return False
            thread = threading.Thread(target=self._work, args=(name,), name=f"label-retrain-{name}", daemon=True)
            self._running[name] = thread
            thread.start()
            return True

    def busy(self, name: str) -> bool:
        with self._lock:
            return name in self._running

    def _work(self, name: str) -> None:
        while True:
            try:
                run_round(self.ws, name)
                self.errors.pop(name, None)
            except Exception as exc:  # the page shows it; labelling goes on without suggestions
                self.errors[name] = f"{type(exc).__name__}: {exc}"
            with self._lock:
                if name in self._again or (name not in self.errors and self._safe_due(name)):
                    self._again.discard(name)
                    continue
                del self._running[name]
                return

    def _safe_due(self, name: str) -> bool:
        try:
            return self.due(name)
        except Exception:
            return False

    def wait(self, name: str, timeout: float = 60.0) -> None:
        deadline = time.time() + timeout
        while self.busy(name) and time.time() < deadline:
            time.sleep(0.05)
