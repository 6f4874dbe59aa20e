"""Neural estimators pickled before `loop` replaced their loop-setting arguments still load, predict the same, and
carry those settings in their LoopConfig (fixtures made by main at 2c4acb3, tests/fixtures/README.md)."""

from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from sklearn.base import clone

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "neural-v1"


def test_an_old_mlp_pickle_loads_predicts_and_maps_its_loop_settings():
    model = joblib.load(FIXTURES / "mlp.joblib")
    rows = pd.read_csv(FIXTURES / "mlp-rows.csv")
    rows["c"] = pd.Categorical(rows["c"], categories=["u", "v"])
    np.testing.assert_allclose(model.predict_proba(rows), np.loadtxt(FIXTURES / "mlp-expected.csv", delimiter=","), rtol=1e-6, atol=1e-9)
    assert not hasattr(model, "epochs") and not hasattr(model, "lr")
    loop = model.loop_config()
    assert (loop.epochs, loop.lr, loop.patience, loop.weight_decay) == (3, 0.01, 3, 0.0)
    assert clone(model).get_params()["loop"].epochs == 3  # refit with the settings it was trained with


def test_an_old_image_classifier_pickle_loads_and_predicts():
    model = joblib.load(FIXTURES / "cnn.joblib")
    images = np.load(FIXTURES / "cnn-images.npy")
    np.testing.assert_allclose(model.predict_proba(images), np.loadtxt(FIXTURES / "cnn-expected.csv", delimiter=","), rtol=1e-5, atol=1e-7)
    loop = model.loop_config()
    assert (loop.epochs, loop.lr, loop.warmup, loop.clip_norm) == (1, 0.01, 0.0, 2.0) and set(model.classes_) == {"p", "q"}
