"""Model files are written with LZ4 (fast inside a run's time limit), and artifacts written with zlib before still load
(tests/models/test_boosted_compat.py loads the v1 fixture, a zlib file)."""

from __future__ import annotations

import joblib
import numpy as np
from sklearn.ensemble import ExtraTreesRegressor

from trainyard.registry.artifact import MODEL_FILE, save_artifact

LZ4_FRAME_MAGIC = b"\x04\x22\x4d\x18"
ZLIB_HEADER = b"\x78"


def test_a_model_file_is_lz4_and_loads_back(tmp_path):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(300, 4)), rng.normal(size=300)
    model = ExtraTreesRegressor(n_estimators=20, random_state=0).fit(X, y)
    save_artifact(model, tmp_path / "a", {"task": "regression"})
    path = tmp_path / "a" / MODEL_FILE
    assert path.read_bytes()[:4] == LZ4_FRAME_MAGIC
    assert np.array_equal(joblib.load(path).predict(X), model.predict(X))


def test_the_v1_fixture_is_zlib_so_the_compat_test_covers_old_files():
    from pathlib import Path

    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "artifacts" / "v1-table-model" / MODEL_FILE
    assert fixture.read_bytes()[:1] == ZLIB_HEADER
