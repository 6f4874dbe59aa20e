"""Monitoring of image inputs (issue 17 item 4): a registered image classifier carries a reference of its training
images (size, brightness, contrast, its own embedding), and `trainyard monitor NAME --data FOLDER` compares new images
with it through the table drift tests: images like the training ones pass, brighter or resized ones are drift."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch")

from imagehelp import make_images  # noqa: E402


def write_folder(root, X, y=None):
    from PIL import Image

    root.mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(X):
        folder = root / y[i] if y is not None else root
        folder.mkdir(exist_ok=True)
        Image.fromarray(img).save(folder / f"{i:04d}.png")
    return root


@pytest.fixture
def image_model(cli, tmp_path):
    X, y = make_images(300, size=16, seed=1)
    folder = write_folder(tmp_path / "train", X, y)
    res = cli("train", folder, "--task", "image-classification", "--name", "bands", "--epochs", "2", env={"OMP_NUM_THREADS": "1"})
    assert res.code == 0, res.output
    return tmp_path


def monitor(cli, *args):
    res = cli("monitor", "bands", *args, "--json")
    return res, (json.loads(res.stdout) if res.stdout.strip().startswith("{") else None)


def test_images_like_the_training_ones_pass_and_changed_ones_drift(cli, image_model):
    tmp = image_model
    X, _ = make_images(200, size=16, seed=7)
    same, report = monitor(cli, "--data", write_folder(tmp / "same", X))
    assert report is not None, same.output
    columns = {f["column"]: f for f in report["features"]}
    assert {"width", "height", "brightness", "contrast", "embedding_0"} <= set(columns)
    assert columns["brightness"]["status"] == "ok" and columns["width"]["status"] == "ok"

    brighter = np.clip(X.astype(int) + 60, 0, 255).astype(np.uint8)
    res, report = monitor(cli, "--data", write_folder(tmp / "bright", brighter))
    assert res.code == 2 and report["status"] == "drift", res.output
    columns = {f["column"]: f for f in report["features"]}
    assert columns["brightness"]["status"] == "drift" and columns["width"]["status"] == "ok"

    bigger = np.kron(X, np.ones((1, 2, 2), dtype=np.uint8))  # the camera's resolution doubled
    res, report = monitor(cli, "--data", write_folder(tmp / "big", bigger))
    assert {f["column"]: f["status"] for f in report["features"]}["width"] == "drift", res.output


def test_image_monitoring_refuses_what_does_not_apply(cli, image_model):
    res, _ = monitor(cli)
    assert res.code == 2 and "--data FOLDER" in res.output and "Traceback" not in res.output
    res, _ = monitor(cli, "--data", image_model / "train", "--since", "7d")
    assert res.code == 2 and "do not apply" in res.output
