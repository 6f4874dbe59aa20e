"""Projects, labels, undo, leases and overlap in the real store (SQLite in WAL mode)."""

from __future__ import annotations

import threading

import pytest
from labelhelp import image_folder, tickets_csv, wine_csv

from trainyard.errors import ConfigError, DataError, NotFoundError
from trainyard.label import ledger
from trainyard.label.project import create_project, get_project
from trainyard.label.settings import LabelSettings
from trainyard.label.status import project_status
from trainyard.registry.workspace import Workspace


@pytest.fixture
def ws(workspace):
    return Workspace.resolve(workspace)


def test_table_project_keeps_given_labels_and_queues_the_rest(ws, tmp_path):
    project = create_project(ws, "wine", wine_csv(tmp_path / "wine.csv"), target="target")
    assert project.kind == "table" and project.classes == ["a", "b", "c"]
    s = project_status(ws.store, project)
    assert (s["items"], s["labelled"], s["given"], s["unlabelled"]) == (178, 30, 30, 148)
    item = ledger.claim(ws.store, project, "alice")
    assert item["given"] is None  # a given label is not asked again (outside the review queue)


def test_label_undo_and_retry_are_recorded_once(ws, tmp_path):
    project = create_project(ws, "wine", wine_csv(tmp_path / "wine.csv"), target="target")
    item = ledger.claim(ws.store, project, "alice")
    for _ in range(2):  # the client retries the same answer: recorded once
        ledger.record(ws.store, project, item["id"], "b", annotator="alice", queue="uncertainty", item_sha256=item["content_sha256"],
                      request_id="req-1", comment="looks like b")
    notes = ledger.annotations(ws.store, project)
    assert [(n["label"], n["annotator"], n["comment"], n["item_sha256"]) for n in notes] == [("b", "alice", "looks like b", item["content_sha256"])]
    assert project_status(ws.store, project)["labelled"] == 31
    undone = ledger.undo(ws.store, project, "alice")
    assert undone["item_id"] == item["id"]
    assert ledger.annotations(ws.store, project) == [] and project_status(ws.store, project)["labelled"] == 30
    assert ledger.claim(ws.store, project, "bob")["id"] != item["id"]  # leased back to alice after her undo


def test_unknown_class_and_stale_item_are_refused(ws, tmp_path):
    project = create_project(ws, "wine", wine_csv(tmp_path / "wine.csv"), target="target")
    item = ledger.claim(ws.store, project, "alice")
    with pytest.raises(ConfigError, match="not a class"):
        ledger.record(ws.store, project, item["id"], "z", annotator="alice", queue="random", item_sha256=item["content_sha256"])
    with pytest.raises(ledger.StaleItemError, match="changed since it was shown"):
        ledger.record(ws.store, project, item["id"], "a", annotator="alice", queue="random", item_sha256="0" * 64)
    with pytest.raises(NotFoundError):
        ledger.record(ws.store, project, 10**6, "a", annotator="alice", queue="random", item_sha256="0" * 64)
    assert ledger.annotations(ws.store, project) == []


def test_create_refuses_bad_inputs(ws, tmp_path):
    path = wine_csv(tmp_path / "wine.csv")
    with pytest.raises(DataError, match="'c'"):
        create_project(ws, "w", path, target="target", classes=["a", "b"])
    with pytest.raises(ConfigError, match="not a valid project name"):
        create_project(ws, "../escape", path, target="target")
    with pytest.raises(ConfigError, match="not a column"):
        create_project(ws, "w", path, target="nope")
    create_project(ws, "w", path, target="target")
    with pytest.raises(ConfigError, match="exists already"):
        create_project(ws, "w", path, target="target")


def test_two_annotators_never_share_an_item_without_overlap(ws, tmp_path):
    path, _ = tickets_csv(tmp_path / "t.csv", n=40)
    project = create_project(ws, "t", path, text_col="body", classes=["billing", "bug", "other"])
    seen = {"alice": [], "bob": []}

    def annotate(who: str):
        while (item := ledger.claim(ws.store, project, who)) is not None:
            seen[who].append(item["id"])
            ledger.record(ws.store, project, item["id"], "other", annotator=who, queue="random", item_sha256=item["content_sha256"])

    threads = [threading.Thread(target=annotate, args=(w,)) for w in seen]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not set(seen["alice"]) & set(seen["bob"])
    assert sorted(seen["alice"] + seen["bob"]) == sorted(set(seen["alice"] + seen["bob"])) and len(seen["alice"] + seen["bob"]) == 40
    assert len(ledger.annotations(ws.store, project)) == 40


def test_overlap_items_go_to_two_annotators_and_disagreements_to_adjudication(ws, tmp_path):
    path, _ = tickets_csv(tmp_path / "t.csv", n=10)
    project = create_project(ws, "t", path, text_col="body", classes=["billing", "bug", "other"], settings=LabelSettings(overlap=1.0))
    a = ledger.claim(ws.store, project, "alice")
    b = ledger.claim(ws.store, project, "bob")
    assert a["id"] == b["id"]  # overlap asks for two annotators on it
    ledger.record(ws.store, project, a["id"], "bug", annotator="alice", queue="random", item_sha256=a["content_sha256"])
    ledger.record(ws.store, project, b["id"], "billing", annotator="bob", queue="random", item_sha256=b["content_sha256"])
    s = project_status(ws.store, project)
    assert s["disagreements"] == 1 and s["agreement"]["items"] == 1 and s["agreement"]["agreed"] == 0
    third = ledger.claim(ws.store, project, "carol", queue="adjudication")
    assert third["id"] == a["id"] and third["final"] is None
    ledger.record(ws.store, project, a["id"], "bug", annotator="carol", queue="adjudication", item_sha256=a["content_sha256"])
    s = project_status(ws.store, project)
    assert s["disagreements"] == 0 and s["class_counts"] == {"bug": 1}


def test_image_folder_project(ws, tmp_path):
    root = image_folder(tmp_path / "photos")
    project = create_project(ws, "parts", root, classes=["ok", "dent", "scratch"])
    s = project_status(ws.store, project)
    assert project.kind == "image" and (s["items"], s["given"]) == (12, 8)
    (root / "link.png").symlink_to(tmp_path / "labelhelp-outside.png")
    (tmp_path / "labelhelp-outside.png").write_bytes((root / "img9.png").read_bytes())
    with pytest.raises(DataError, match="outside the image folder"):
        create_project(ws, "parts2", root, classes=["ok", "dent"])
