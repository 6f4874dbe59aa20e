"""models.unwrap: the LightGBM/XGBoost models inside AutoML's wrappers, with weights that reproduce the model."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import make_mixed_table


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from trainyard import api

    home = tmp_path_factory.mktemp("unwrap") / "ws"
    df = make_mixed_table(400, seed=2)
    api.train(df, target="churn", workspace=home, include=["lightgbm", "xgboost"], max_trials=4, name="mixed")
    api.train(df, target="churn", workspace=home, include=["linear"], max_trials=1, name="lin")
    return home, df.drop(columns="churn")


def test_weighted_members_reproduce_the_probabilities(trained):
    from trainyard import api
    from trainyard.models.unwrap import tree_parts

    home, X = trained
    model = api.load("mixed", home)
    parts = tree_parts(model)
    assert parts is not None and parts.libraries <= {"lightgbm", "xgboost"}
    assert sum(w for w, _, _ in parts.members) == pytest.approx(1.0)
    Xt = parts.prep.transform(X)
    rebuilt = sum(w * est.predict_proba(Xt) for w, _, est in parts.members)
    np.testing.assert_allclose(rebuilt, model.predict_proba_array(X), atol=1e-9)


def test_non_boosting_models_say_why(trained):
    from trainyard import api
    from trainyard.models.unwrap import tree_parts, why_not

    home, _ = trained
    model = api.load("lin", home)
    assert tree_parts(model) is None
    assert "linear" in why_not(model) and "not gradient-boosting" in why_not(model)
