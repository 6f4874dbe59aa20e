"""Small image sets learn with the defaults (issue 17, item 1): flips chosen from the data (off for digits), batches
sized so a few hundred images still take enough steps, and a run that loses to a pixel baseline says so."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

from trainyard.data.images import mirror_safe  # noqa: E402
from trainyard.models.image import ImageClassifier  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def digits(n=600, scale=2):
    """scikit-learn's 8x8 digits as uint8 images, upscaled `scale` times (as a user's scanned digits would be)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    X = np.kron((d.images[:n] / 16 * 255).astype(np.uint8), np.ones((1, scale, scale), dtype=np.uint8))
    return X, d.target[:n].astype(str)


def bands(n=200, size=16, seed=0):
    """Classes that a mirror keeps (bright top rows, bottom rows, middle columns)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    X = (rng.random((n, size, size)) * 60).astype(np.int16)
    for i in range(n):
        X[i, :size // 2] += 150 * (y[i] == 0)
        X[i, size // 2:] += 150 * (y[i] == 1)
        X[i, :, size // 3: 2 * size // 3] += 150 * (y[i] == 2)
    return X.astype(np.uint8), y


def test_flips_are_chosen_by_the_data():
    X, y = digits()
    safe, scores = mirror_safe(X, np.arange(len(y)), y)
    assert not safe and scores["mirrored_accuracy"] < 0.5 * scores["accuracy"]  # a mirrored 2 is not a 2
    X, y = bands()
    safe, scores = mirror_safe(X, np.arange(len(y)), y)
    assert safe and scores["mirrored_accuracy"] > 0.9


def test_small_sets_get_small_batches_and_no_flips_for_digits():
    X, y = digits(300)
    model = ImageClassifier(width=8, loop=ImageClassifier().default_loop(epochs=1)).fit(X, y)
    assert model.flips_ is False and model.batch_size_ == 16 and model.batch_size is None
    assert ImageClassifier(flips=True, width=8, loop=ImageClassifier().default_loop(epochs=1)).fit(X, y).flips_ is True
    assert ImageClassifier(augment=False, width=8, loop=ImageClassifier().default_loop(epochs=1)).fit(X, y).flips_ is False


def write_folder(root, X, y):
    from PIL import Image

    for i, (img, label) in enumerate(zip(X, y)):
        (root / label).mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(root / label / f"{i}.png")
    return root


def test_digits_folder_beats_the_pixel_baseline_and_a_losing_run_says_so(cli, workspace, tmp_path):
    import json

    X, y = digits(600)
    folder = write_folder(tmp_path / "digits", X, y)
    res = cli("train", folder, "--task", "image-classification", "--json", env={"OMP_NUM_THREADS": "1"})  # 16-pixel grey PNGs
    assert res.code == 0, res.output
    out = json.loads(res.stdout)
    assert out["test"]["accuracy"] > out["test"]["pixel_baseline_accuracy"] > 0.8, out["test"]
    assert not any("loses to" in n for n in out["notes"])
    short = cli("train", folder, "--task", "image-classification", "--max-steps", "2", "--name", "short", env={"OMP_NUM_THREADS": "1"})
    assert short.code == 0, short.output
    assert "loses to a logistic regression" in short.stdout
