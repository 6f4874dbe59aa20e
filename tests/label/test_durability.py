"""Nothing lost, nothing duplicated: two annotators at once on PostgreSQL and SQLite, and a labelling process killed
with SIGKILL in the middle of its writes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid

import pytest
import sqlalchemy as sa
from conftest import SRC
from labelhelp import tickets_csv

from trainyard.label import ledger
from trainyard.label.formats import import_labels, write_export
from trainyard.label.project import create_project, get_project, items_frame
from trainyard.label.settings import LabelSettings
from trainyard.label.status import project_status
from trainyard.registry import tables as t
from trainyard.registry.workspace import Workspace


def label_all(ws, project, who: str, truth: list[str], out: list) -> None:
    while (item := ledger.claim(ws.store, project, who)) is not None:
        out.append(item["id"])
        ledger.record(ws.store, project, item["id"], truth[item["position"]], annotator=who, queue="random", item_sha256=item["content_sha256"])


def consistent(ws, project) -> None:
    """Every item's summary matches its live labels; nobody labelled one item twice."""
    notes = ledger.annotations(ws.store, project)
    per_item: dict[int, list[str]] = {}
    for n in notes:
        per_item.setdefault(n["item_id"], []).append(n["annotator"])
    assert all(len(v) == len(set(v)) for v in per_item.values())
    items = items_frame(ws.store, project.name, ("id", "n_labels"))
    assert {int(i): int(n) for i, n in zip(items["id"], items["n_labels"]) if n} == {i: len(v) for i, v in per_item.items()}


@pytest.mark.parametrize("overlap", [0.0, 1.0])
def test_two_annotators_on_postgresql(postgres_url, tmp_path, overlap):
    ws = Workspace.resolve(tmp_path / "ws", db_url=postgres_url)
    path, truth = tickets_csv(tmp_path / "t.csv", n=30)
    name = f"pg-{uuid.uuid4().hex[:8]}"
    project = create_project(ws, name, path, text_col="body", classes=["billing", "bug", "other"], settings=LabelSettings(overlap=overlap))
    seen = {"alice": [], "bob": []}
    threads = [threading.Thread(target=label_all, args=(ws, project, w, truth, seen[w])) for w in seen]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    total = seen["alice"] + seen["bob"]
    if overlap == 0.0:
        assert len(total) == len(set(total)) == 30
    else:
        assert sorted(seen["alice"]) == sorted(seen["bob"]) and len(seen["alice"]) == 30
        assert project_status(ws.store, project)["agreement"]["cohen_kappa"] == pytest.approx(1.0)
    consistent(ws, project)
    status = project_status(ws.store, project)
    assert status["labelled"] == 30 and sum(status["class_counts"].values()) == 30 and status["double"] == (30 if overlap else 0)
    write_export(ws.store, project, tmp_path / "out.jsonl", "jsonl")
    twin = create_project(ws, name + "-b", path, text_col="body", classes=["billing", "bug", "other"])
    assert import_labels(ws.store, twin, tmp_path / "out.jsonl")["labels"] == len(total)


KILLED_LABELLER = """
import sys
from trainyard.label import ledger
from trainyard.label.project import get_project
from trainyard.registry.workspace import Workspace
ws = Workspace.resolve(sys.argv[1])
project = get_project(ws.store, "t")
n = 0
while (item := ledger.claim(ws.store, project, "alice")) is not None:
    ledger.record(ws.store, project, item["id"], "bug", annotator="alice", queue="random", item_sha256=item["content_sha256"],
                  request_id=f"req-{n}")
    n += 1
    if n % 5 == 0:
        ledger.undo(ws.store, project, "alice")
        n += 1
    print(n, flush=True)
"""


def test_killed_labeller_leaves_the_store_consistent(tmp_path):
    home = tmp_path / "ws"
    ws = Workspace.resolve(home)
    path, _ = tickets_csv(tmp_path / "t.csv", n=400)
    create_project(ws, "t", path, text_col="body", classes=["billing", "bug", "other"])
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.Popen([sys.executable, "-c", KILLED_LABELLER, str(home)], env=env, stdout=subprocess.PIPE, text=True)
    first = proc.stdout.readline()  # it is writing
    assert first.strip()
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    project = get_project(ws.store, "t")
    consistent(ws, project)
    with ws.store.reader.connect() as conn:
        ids = [r.request_id for r in conn.execute(sa.select(t.label_annotations.c.request_id))]
    assert len(ids) == len(set(ids)) > 0
    live = len(ledger.annotations(ws.store, project))
    assert project_status(ws.store, project)["labelled"] == live
    # a retry of the last answer the killed process sent is recorded once, whether or not it had landed
    last = ids[-1]
    item = ledger.claim(ws.store, project, "alice")
    ledger.record(ws.store, project, item["id"], "bug", annotator="alice", queue="random", item_sha256=item["content_sha256"], request_id=last)
    assert len(ledger.annotations(ws.store, project)) == live
