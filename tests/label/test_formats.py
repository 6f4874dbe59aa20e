"""Labels out and back in: JSONL, CSV and Label Studio JSON, matched by id or by content; bad files change nothing."""

from __future__ import annotations

import json

import pytest
from labelhelp import tickets_csv

from trainyard.errors import DataError
from trainyard.label import ledger
from trainyard.label.formats import import_labels, write_export
from trainyard.label.project import create_project
from trainyard.label.status import project_status
from trainyard.registry.workspace import Workspace

CLASSES = ["billing", "bug", "other"]


@pytest.fixture
def labelled(workspace, tmp_path):
    """A text project with five items labelled by alice, and an empty twin project over the same data."""
    ws = Workspace.resolve(workspace)
    path, truth = tickets_csv(tmp_path / "t.csv", n=30)
    project = create_project(ws, "t", path, text_col="body", classes=CLASSES)
    for _ in range(5):
        item = ledger.claim(ws.store, project, "alice")
        ledger.record(ws.store, project, item["id"], truth[item["position"]], annotator="alice", queue="random",
                      item_sha256=item["content_sha256"], comment="sure")
    twin = create_project(ws, "twin", path, text_col="body", classes=CLASSES)
    return ws, project, twin, path


def _labels(ws, project) -> set:
    return {(a["key"], a["label"]) for a in ledger.annotations(ws.store, project)}


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "labelstudio"])
def test_round_trip(labelled, tmp_path, fmt):
    ws, project, twin, _ = labelled
    out = tmp_path / f"export.{fmt}"
    out = out.with_suffix({"jsonl": ".jsonl", "csv": ".csv", "labelstudio": ".json"}[fmt])
    assert write_export(ws.store, project, out, fmt) == 5
    result = import_labels(ws.store, twin, out)
    assert result["labels"] == 5
    assert _labels(ws, twin) == _labels(ws, project)
    if fmt == "labelstudio":
        task = json.loads(out.read_text())[0]
        assert task["annotations"][0]["completed_by"] == "alice" and task["annotations"][0]["result"][0]["value"]["choices"]
        assert {a["annotator"] for a in ledger.annotations(ws.store, twin)} == {"alice"}


def test_label_studio_import_by_content_without_ids(labelled, tmp_path):
    ws, _, twin, path = labelled
    import pandas as pd

    body = pd.read_csv(path)["body"][3]
    tasks = [{"data": {"text": body}, "annotations": [{"completed_by": 7, "result": [{"value": {"choices": ["bug"]}}]}],
              "predictions": [{"result": [{"value": {"choices": ["other"]}}], "score": 0.4}]}]
    (tmp_path / "ls.json").write_text(json.dumps(tasks))
    assert import_labels(ws.store, twin, tmp_path / "ls.json")["labels"] == 1
    assert _labels(ws, twin) == {("t3", "bug")}


@pytest.mark.parametrize("content, problem", [
    ('[{"data": {"id": "t1"}, "annotations": [{"result": [{"value": {"choices": ["spam"]}}]}]}]', "'spam' is not a class"),
    ('[{"data": {"id": "gone"}, "annotations": [{"result": [{"value": {"choices": ["bug"]}}]}]}]', "matches no item"),
    ('[{"data": {"id": "t1"}, "annotations": [', "is not valid"),
    ('{"just": "an object"', "is not valid"),
    ('"text"', "does not hold a list of tasks"),
])
def test_bad_import_writes_nothing(labelled, tmp_path, content, problem):
    ws, _, twin, _ = labelled
    (tmp_path / "bad.json").write_text(content)
    with pytest.raises(Exception, match=problem) as info:
        import_labels(ws.store, twin, tmp_path / "bad.json")
    assert hasattr(info.value, "fix") and info.value.fix
    assert _labels(ws, twin) == set() and project_status(ws.store, twin)["labelled"] == 0


def test_csv_import_by_id_column(labelled, tmp_path):
    ws, _, twin, _ = labelled
    (tmp_path / "l.csv").write_text("id,label\nt1,bug\nt2,\nt4,billing\n")
    assert import_labels(ws.store, twin, tmp_path / "l.csv")["labels"] == 2
    assert _labels(ws, twin) == {("t1", "bug"), ("t4", "billing")}
    (tmp_path / "nolabel.csv").write_text("id,what\nt1,bug\n")
    with pytest.raises(DataError, match="has no label"):
        import_labels(ws.store, twin, tmp_path / "nolabel.csv")
