"""The labelling API over HTTP on loopback: annotators' tokens, refusals with a fix, a retry recorded once."""

from __future__ import annotations

import httpx
import pytest
from dashboard_helpers import ThreadServer
from labelhelp import tickets_csv

from trainyard.label import ledger
from trainyard.label.annotators import add_annotator
from trainyard.label.project import create_project, get_project
from trainyard.label.settings import LabelSettings
from trainyard.registry.workspace import Workspace

TOKEN = "dashboard-token-0123456789"


@pytest.fixture
def served(workspace, tmp_path):
    from trainyard.dashboard.app import create_app

    ws = Workspace.resolve(workspace)
    path, truth = tickets_csv(tmp_path / "t.csv", n=30)
    project = create_project(ws, "t", path, text_col="body", classes=["billing", "bug", "other"],
                             settings=LabelSettings(features="tfidf", retrain_every=100))
    alice = add_annotator(ws.store, project, "alice")
    server = ThreadServer(create_app(ws, token=TOKEN, loopback_only=False))
    yield ws, server.url, alice
    server.stop()


def test_annotator_token_opens_the_labelling_page_only(served):
    ws, url, alice = served
    assert httpx.get(url + "/api/label/t/next").status_code == 401
    as_alice = {"X-Annotator-Token": alice}
    got = httpx.get(url + "/api/label/t/next", headers=as_alice).json()
    assert got["annotator"] == "alice" and got["item"]["text"]
    assert httpx.get(url + "/runs", headers=as_alice).status_code == 401  # an annotator's token opens labelling only
    assert httpx.get(url + "/api/label/t/next", headers={"X-Annotator-Token": "forged-token-value"}).status_code == 401
    page = httpx.get(url + f"/label/t?annotator={alice}", follow_redirects=False)
    assert page.status_code == 303 and "trainyard_annotator=" in page.headers["set-cookie"]
    owner = httpx.get(url + "/api/label/t/next", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert owner["annotator"] == "local" and owner["item"]["id"] != got["item"]["id"]


def test_answers_refused_with_a_fix_and_retries_recorded_once(served):
    ws, url, alice = served
    headers = {"X-Annotator-Token": alice}
    item = httpx.get(url + "/api/label/t/next", headers=headers).json()["item"]
    answer = {"item_id": item["id"], "item_sha256": item["sha"], "label": "bug", "request_id": "request-0001", "queue": "random"}
    for _ in range(2):
        assert httpx.post(url + "/api/label/t/answer", json=answer, headers=headers).status_code == 200
    wrong = httpx.post(url + "/api/label/t/answer", json={**answer, "label": "spam", "request_id": "request-0002"}, headers=headers)
    assert wrong.status_code == 400 and "'spam' is not a class" in wrong.json()["error"] and wrong.json()["fix"]
    stale = httpx.post(url + "/api/label/t/answer", json={**answer, "item_sha256": "f" * 64, "request_id": "request-0003"}, headers=headers)
    assert stale.status_code == 400 and "changed since it was shown" in stale.json()["error"]
    notes = ledger.annotations(ws.store, get_project(ws.store, "t"))
    assert [(n["annotator"], n["label"]) for n in notes] == [("alice", "bug")]


def test_image_items_are_served_from_the_project_folder(workspace, tmp_path):
    from fastapi.testclient import TestClient
    from labelhelp import image_folder

    from trainyard.dashboard.app import create_app

    ws = Workspace.resolve(workspace)
    root = image_folder(tmp_path / "photos")
    create_project(ws, "parts", root, classes=["ok", "dent", "scratch"], settings=LabelSettings(queue="random"))
    client = TestClient(create_app(ws), base_url="http://127.0.0.1")
    item = client.get("/api/label/parts/next").json()["item"]
    assert item["kind"] == "image" and item["given"] is None
    image = client.get(item["image"])
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert image.content == (root / item["key"]).read_bytes()
    (root / item["key"]).unlink()  # the image vanished: a clear refusal, not a traceback
    gone = client.get(item["image"])
    assert gone.status_code == 404 and "vanished" in gone.json()["error"]
    page = client.get("/label/parts")
    assert page.status_code == 200 and "/static/label.js" in page.text
    assert "parts" in client.get("/label").text
