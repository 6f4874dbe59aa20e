"""Per-prediction contributions: LightGBM (binary, multiclass, regression) and XGBoost, summed back to input columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline

from conftest import make_mixed_table
from trainyard.data.prepare import make_preprocessor
from trainyard.data.schema import infer_schema
from trainyard.evaluation.explain import contributions, input_column
from trainyard.models.model import TrainyardModel
from trainyard.tasks import Task


def _dated_table(n=400, seed=0):
    df = make_mixed_table(n, seed)
    df["signup"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(np.random.default_rng(seed).integers(0, 365, n), unit="D")
    return df


def _model(df, target, task, estimator):
    schema = infer_schema(df, target)
    classes = np.sort(df[target].unique()) if task.is_classification else None
    y = np.searchsorted(classes, df[target]) if classes is not None else df[target].to_numpy(float)
    pipe = Pipeline([("prep", make_preprocessor(schema, "tree")), ("model", estimator)]).fit(df[schema.features()], y)
    return TrainyardModel(pipe, task=task, schema=schema, classes=classes, family="x")


def test_input_column_mapping():
    assert input_column("signup.month", ["signup", "plan"]) == "signup"
    assert input_column("plan", ["signup", "plan"]) == "plan"
    assert input_column("a.b.lsa0", ["a", "a.b"]) == "a.b"


def test_lightgbm_binary_contributions_sum_to_the_raw_score_and_cover_date_parts():
    import lightgbm as lgb

    df = _dated_table()
    model = _model(df, "churn", Task.BINARY, lgb.LGBMClassifier(n_estimators=30, verbose=-1))
    X = df[model.features]
    c = contributions(model, X)
    assert "signup" in c.columns and not any(col.startswith("signup.") for col in c.columns)
    raw = model.pipeline.named_steps["model"].predict(model.pipeline.named_steps["prep"].transform(X), raw_score=True)
    np.testing.assert_allclose(c.sum(axis=1), raw, atol=1e-6)


def test_lightgbm_multiclass_contributions_are_for_the_predicted_class():
    import lightgbm as lgb

    df = make_mixed_table(400, 1)
    model = _model(df, "plan", Task.MULTICLASS, lgb.LGBMClassifier(n_estimators=20, verbose=-1))
    X = df[model.features]
    c = contributions(model, X)
    raw = model.pipeline.named_steps["model"].predict(model.pipeline.named_steps["prep"].transform(X), raw_score=True)
    predicted = model.predict_proba_array(X).argmax(axis=1)
    np.testing.assert_allclose(c.sum(axis=1), raw[np.arange(len(X)), predicted], atol=1e-6)


def test_xgboost_contributions_sum_to_the_margin():
    xgb = pytest.importorskip("xgboost")

    df = make_mixed_table(400, 2).dropna(subset=["charges"]).drop(columns="churn")
    model = _model(df, "charges", Task.REGRESSION, xgb.XGBRegressor(n_estimators=30, enable_categorical=True, tree_method="hist"))
    X = df[model.features]
    c = contributions(model, X)
    assert set(c.columns) == set(model.features) | {"bias"}
    np.testing.assert_allclose(c.sum(axis=1), model.predict(X), rtol=1e-4, atol=1e-3)


def test_other_models_have_no_contributions():
    from sklearn.linear_model import LogisticRegression

    df = make_mixed_table(200, 3)
    schema = infer_schema(df, "churn")
    pipe = Pipeline([("prep", make_preprocessor(schema, "linear")), ("model", LogisticRegression())])
    pipe.fit(df[schema.features()], (df["churn"] == "yes").astype(int))
    model = TrainyardModel(pipe, task=Task.BINARY, schema=schema, classes=np.array(["no", "yes"]))
    assert contributions(model, df[schema.features()]) is None
