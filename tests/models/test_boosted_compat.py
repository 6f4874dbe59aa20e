"""Boosted's hyperparameters are constructor arguments: scikit-learn sees them, the fitted model is the one the old
`params` dict gave, and artifacts pickled before the change still load and predict the same (fixtures made by main)."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from trainyard.data.schema import infer_schema
from trainyard.errors import ConfigError
from trainyard.models.boosting import Boosted
from trainyard.models.families import get_family
from trainyard.registry.artifact import load_artifact
from trainyard.tasks import Task

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _data():
    return pd.read_csv(FIXTURES / "boosted-v1-data.csv")


def test_hyperparameters_are_arguments_that_get_set_and_clone_see():
    est = Boosted("lightgbm", "binary", n_estimators=30, num_leaves=4, early_stopping_rounds=0)
    assert est.get_params()["num_leaves"] == 4 and "params" not in est.get_params()
    copy = clone(est).set_params(num_leaves=31, learning_rate=0.3)
    assert copy.get_params()["num_leaves"] == 31 and est.num_leaves == 4

    df = _data()
    X, y = df[["x1", "x2", "x3"]], df["y"]
    small = clone(est).fit(X, y)
    large = copy.fit(X, y)
    assert small.model_.get_params()["num_leaves"] == 4 and large.model_.get_params()["num_leaves"] == 31
    leaves = [m.model_.booster_.dump_model()["tree_info"][0]["num_leaves"] for m in (small, large)]
    assert leaves[0] <= 4 < leaves[1]
    assert not np.allclose(small.predict_proba(X), large.predict_proba(X))


def test_a_setting_the_library_does_not_take_is_refused():
    X, y = _data()[["x1", "x2"]], _data()["y"]
    with pytest.raises(ConfigError, match="num_leaves"):
        Boosted("catboost", num_leaves=8).fit(X, y)


@pytest.mark.parametrize("library", ["lightgbm", "xgboost", "catboost"])
@pytest.mark.parametrize("task", [Task.BINARY, Task.REGRESSION])
def test_family_defaults_train_the_same_model_as_before(library, task):
    """Each family's defaults, fitted with seed 3, predict what main (2c4acb3, the `params` dict) predicted."""
    df = _data()
    target, drop = ("y", "z") if task is Task.BINARY else ("z", "y")
    frame = df.drop(columns=[drop])
    X, y = frame.drop(columns=[target]), frame[target]
    y = (y == "yes").astype(int).to_numpy() if task is Task.BINARY else y.to_numpy()
    pipe = get_family(library).build(infer_schema(frame, target), task, seed=3).fit(X.iloc[:300], y[:300])
    got = pipe.predict_proba(X.iloc[300:])[:, 1] if task is Task.BINARY else pipe.predict(X.iloc[300:])
    expected = pd.read_csv(FIXTURES / "boosted-v1-predictions.csv")[f"{task.value}_{library}"].to_numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-9)


def test_catboost_trials_recorded_with_catboosts_own_names_still_build():
    est = get_family("catboost").make(Task.BINARY, 0, iterations=50, depth=4, l2_leaf_reg=2.0, learning_rate=0.1)
    assert (est.n_estimators, est.max_depth, est.reg_lambda) == (50, 4, 2.0)
    assert est.library_params() == {"iterations": 50, "depth": 4, "l2_leaf_reg": 2.0, "learning_rate": 0.1}


def test_an_artifact_saved_before_the_change_loads_and_predicts_the_same():
    directory = FIXTURES / "artifacts" / "v1-table-model"
    meta_sha = (FIXTURES / "artifacts" / "v1-table-model.meta-sha256").read_text().strip()
    model, meta = load_artifact(directory, meta_sha)  # the registry's hash-checked path
    rows = pd.read_csv(FIXTURES / "artifacts" / "v1-table-model-rows.csv")
    expected = pd.read_csv(FIXTURES / "artifacts" / "v1-table-model-expected.csv")
    np.testing.assert_allclose(model.predict_proba_array(rows), expected[[f"proba_{c}" for c in model.classes]].to_numpy(),
                               rtol=1e-9, atol=1e-12)
    assert (model.predict(rows) == expected["label"].to_numpy()).all()

    boosted = model.pipeline.members_[0].estimators_[0]
    assert isinstance(boosted, Boosted) and not hasattr(boosted, "params")
    assert (boosted.n_estimators, boosted.num_leaves, boosted.subsample_freq) == (2000, 31, 1)
    assert boosted.n_features_in_ == 4 and list(boosted.feature_names_in_) == ["color", "x1", "x2", "x3"]
    refit = clone(boosted)  # the old model's settings, as arguments, train a new one
    assert refit.get_params()["learning_rate"] == 0.1 and not hasattr(refit, "model_")
