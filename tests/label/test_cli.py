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
