"""`trainyard label ...` and `trainyard train label:NAME` through the real CLI."""

from __future__ import annotations

import json

import pytest
from labelhelp import image_folder, wine_csv


def test_create_status_export_and_train(cli, tmp_path, workspace):
    data = wine_csv(tmp_path / "wine.csv", given=60)
    created = cli("label", "create", "wine", "--data", data, "--target", "target", "--retrain-every", "5")
    assert created.code == 0, created.output
    assert "178 table items" in created.output
    assert cli("label", "retrain", "wine").code == 0
    status = cli("label", "status", "wine", "--json")
    s = json.loads(status.stdout)
    assert (s["labelled"], s["rounds"]) == (60, 1) and s["accuracy"] > 0.7
    exported = cli("label", "export", "wine", "-o", tmp_path / "labels.csv")
    assert exported.code == 0 and (tmp_path / "labels.csv").read_text().count("\n") == 61
    trained = cli("train", "label:wine", "--include", "linear", "--max-trials", "1", "--json")
    assert trained.code == 0, trained.output
    out = json.loads(trained.stdout)
    assert out["name"] == "wine" and out["version"] == 1


@pytest.mark.slow
def test_image_project_trains_as_image_classification(cli, tmp_path):
    root = image_folder(tmp_path / "photos", n=60)
    assert cli("label", "create", "parts", "--data", root, "--classes", "ok,dent").code == 0
    trained = cli("train", "label:parts", "--epochs", "1", "--json")
    assert trained.code == 0, trained.output
    assert json.loads(trained.stdout)["name"] == "parts"


def test_label_name_opens_the_page_for_a_known_project_only(cli, tmp_path):
    data = wine_csv(tmp_path / "wine.csv")
    assert cli("label", "create", "wine", "--data", data, "--target", "target").code == 0
    missing = cli("label", "nosuch")
    assert missing.code == 2 and "No labelling project named 'nosuch'" in missing.output


def test_label_name_serves_the_page(tmp_path, workspace):
    import os
    import subprocess
    import sys
    import time

    import httpx
    from conftest import SRC
    from dashboard_helpers import free_port

    from trainyard.label.project import create_project
    from trainyard.registry.workspace import Workspace

    create_project(Workspace.resolve(workspace), "wine", wine_csv(tmp_path / "wine.csv"), target="target")
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(SRC), "TRAINYARD_HOME": str(workspace)}
    proc = subprocess.Popen([sys.executable, "-m", "trainyard", "label", "wine", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline, page = time.time() + 30, None
        while time.time() < deadline and page is None:
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/label/wine", timeout=2)
            except httpx.HTTPError:
                time.sleep(0.2)
        assert page is not None and page.status_code == 200 and 'data-project="wine"' in page.text
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    assert f"http://127.0.0.1:{port}/label/wine" in out
