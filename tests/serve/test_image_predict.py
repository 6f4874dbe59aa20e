"""Images in, predictions out (issue 17, item 4): `trainyard predict NAME FOLDER|FILE` writes path, class and
probabilities; `trainyard evaluate NAME --data FOLDER` scores a labelled folder; broken files are user errors."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

pytest.importorskip("torch")

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def bands(n=150, size=16, seed=0):
    """Three classes told apart by where the bright band is (top rows, bottom rows, middle columns)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    X = (rng.random((n, size, size)) * 60).astype(np.int16)
    for i in range(n):
        X[i, :size // 2] += 150 * (y[i] == 0)
        X[i, size // 2:] += 150 * (y[i] == 1)
        X[i, :, size // 3: 2 * size // 3] += 150 * (y[i] == 2)
    return X.astype(np.uint8), np.array(["top", "bottom", "middle"])[y]


def write_folder(root, X, y, labelled=True):
    from PIL import Image

    for i, (img, label) in enumerate(zip(X, y)):
        folder = root / label if labelled else root
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(folder / f"{i:03d}.png")
    return root


@pytest.fixture
def shapes(workspace, tmp_path):
    from trainyard.api import train

    X, y = bands(240)
    result = train(write_folder(tmp_path / "shapes", X, y), task="image-classification", epochs=8, width=8, batch_size=32, lr=0.01)
    assert result.metrics["accuracy"] > 0.8
    return result


def test_predict_a_folder_and_a_file_writes_path_class_and_probabilities(cli, shapes, tmp_path):
    X, y = bands(30, seed=5)
    folder = write_folder(tmp_path / "new", X, y, labelled=False)
    res = cli("predict", "shapes", folder, "-o", tmp_path / "out.csv")
    assert res.code == 0, res.output
    rows = list(csv.DictReader((tmp_path / "out.csv").open()))
    assert [r["path"] for r in rows] == [str(folder / f"{i:03d}.png") for i in range(30)]
    assert set(rows[0]) == {"path", "prediction", "proba_bottom", "proba_middle", "proba_top"}
    assert np.mean([r["prediction"] == label for r, label in zip(rows, y)]) > 0.8
    assert all(abs(sum(float(r[k]) for k in r if k.startswith("proba_")) - 1) < 1e-6 for r in rows)
    one = cli("predict", "shapes", folder / "000.png")
    assert one.code == 0 and rows[0]["prediction"] in one.stdout
    (folder / "broken.png").write_bytes(b"not a png")
    bad = cli("predict", "shapes", folder, "-o", tmp_path / "bad.csv")
    assert bad.code == 2 and "broken.png" in bad.stderr and "Traceback" not in bad.output
    missing = cli("predict", "shapes", tmp_path / "nowhere")
    assert missing.code == 2 and "nowhere" in missing.stderr


def test_evaluate_on_a_labelled_folder(cli, shapes, tmp_path):
    X, y = bands(45, seed=7)
    res = cli("evaluate", "shapes", "--data", write_folder(tmp_path / "held", X, y), "--json")
    assert res.code == 0, res.output
    report = json.loads(res.stdout)
    assert report["images"] == 45 and report["accuracy"] > report["majority_baseline"] and report["accuracy"] > 0.8
    assert set(report["recall"]) == {"bottom", "middle", "top"} and report["log_loss"] > 0
    shown = cli("evaluate", "shapes", "--data", tmp_path / "held")
    assert shown.code == 0 and "majority baseline" in shown.stdout


def test_server_classifies_uploaded_images_like_predict_does(shapes, workspace, tmp_path):
    import httpx
    from servehelp import running_server

    import trainyard
    from trainyard.serve.app import ServeSettings
    from trainyard.serve.images import predict_images

    X, y = bands(6, seed=9)
    folder = write_folder(tmp_path / "up", X, y, labelled=False)
    files = sorted(str(p) for p in folder.iterdir())
    local = predict_images(trainyard.load("shapes"), files)
    with running_server(ServeSettings(refs=["shapes"], workspace=str(workspace), poll_interval=0)) as (url, _):
        parts = [("file", (p.rsplit("/", 1)[1], open(p, "rb").read(), "image/png")) for p in files]
        res = httpx.post(f"{url}/v1/models/shapes/predict", files=parts, timeout=60)
        assert res.status_code == 200, res.text
        body = res.json()
        assert body["model"] == "shapes" and body["version"] == 1 and len(body["predictions"]) == 6
        for (_, row), got in zip(local.iterrows(), body["predictions"]):
            assert got["file"] == row["path"].rsplit("/", 1)[1] and got["prediction"] == row["prediction"]
            assert abs(got["probabilities"]["top"] - row["proba_top"]) < 1e-5
        bad = httpx.post(f"{url}/v1/models/shapes/predict", files=[("file", ("notes.png", b"not an image", "image/png"))], timeout=30)
        assert bad.status_code == 422 and "notes.png" in bad.text
        as_json = httpx.post(f"{url}/v1/models/shapes/predict", json={"rows": []}, timeout=30)
        assert as_json.status_code == 415 and "multipart" in as_json.text
