"""The few-rows path (trainyard.models.rowpath) gives the pipeline's numbers, for every kind of member."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.conftest import make_mixed_table
from trainyard.data.prepare import make_preprocessor
from trainyard.data.schema import infer_schema
from trainyard.models.model import TrainyardModel
from trainyard.models.families import get_family
from trainyard.models.rowpath import compile_rows
from trainyard.tasks import Task
from trainyard.models.ensemble import Bag, WeightedEnsemble

pytestmark = pytest.mark.usefixtures("torch_one_thread")

FAMILIES = ["lightgbm", "xgboost", "catboost", "extra_trees", "linear", "knn", "mlp"]


def _awkward_rows(df: pd.DataFrame, target: str) -> pd.DataFrame:
    """Rows with missing values, an unseen category and a number given as a string."""
    rows = df.drop(columns=[target]).head(40).copy()
    rows.loc[rows.index[0], "plan"] = "never-seen-before"
    rows.loc[rows.index[1], "plan"] = None
    rows.loc[rows.index[2], "charges"] = np.nan
    rows["charges"] = rows["charges"].astype(object)
    rows.loc[rows.index[3], "charges"] = str(rows.loc[rows.index[4], "charges"])
    if "signup" in rows:
        rows.loc[rows.index[5], "signup"] = "not a date"
    return rows


@pytest.mark.parametrize("task,target", [(Task.BINARY, "churn"), (Task.MULTICLASS, "plan_kind"), (Task.REGRESSION, "tenure")])
def test_every_member_kind_gives_the_pipeline_numbers(task, target):
    df = make_mixed_table(900, seed=3)
    df["signup"] = pd.date_range("2020-01-01", periods=len(df), freq="37h").strftime("%Y-%m-%d %H:%M")
    df.loc[::50, "signup"] = None
    if task is Task.MULTICLASS:
        df["plan_kind"] = np.where(df["support_calls"] > 3, "many", np.where(df["support_calls"] > 1, "some", "few"))
        df = df.drop(columns=["churn", "support_calls", "signup"])  # no dates: the linear kind has its row path too
    elif task is Task.REGRESSION:
        df = df.drop(columns=["churn"])
    schema = infer_schema(df, target)
    assert "signup" not in df or schema.role("signup") == "datetime"
    X = df.drop(columns=[target])
    classes = None
    y = df[target].to_numpy()
    if task.is_classification:
        classes, y = np.unique(y, return_inverse=True)
    n_classes = None if classes is None else len(classes)
    members = []
    for name in FAMILIES:
        family = get_family(name)
        size = {"catboost": {"iterations": 30}, "linear": {}, "knn": {}, "mlp": {"epochs": 3}}.get(name, {"n_estimators": 30})
        est = family.make(task, 0, **{**family.defaults, **size})
        if name == "xgboost":  # one member bagged, so fold models are covered too
            est = Bag(est, 3, task.value, n_classes, 0)
        members.append((family.prep, est))
    preps = {kind: make_preprocessor(schema, kind, task) for kind in {"tree", "linear"}}
    ens = WeightedEnsemble(preps, members, [0.3, 0.2, 0.1, 0.1, 0.1, 0.1, 0.1], task.value, n_classes).fit(X, y)
    model = TrainyardModel(ens, task=task, schema=schema, classes=classes)

    rows = _awkward_rows(df, target)
    fast = compile_rows(model)
    assert fast is not None
    assert fast.row_kinds == (["linear", "tree"] if task is Task.MULTICLASS else ["tree"])
    got = fast(rows.to_dict(orient="records"))
    want = ens.predict(rows) if task is Task.REGRESSION else ens.predict_proba(rows)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9)
    # through the model's public methods: one row (the single-row C API for LightGBM) and a small frame
    for part in (rows.iloc[[0]], rows.iloc[[3]], rows):
        if task is Task.REGRESSION:
            np.testing.assert_allclose(model.predict(part), ens.predict(part), rtol=1e-6, atol=1e-9)
        else:
            np.testing.assert_allclose(model.predict_proba_array(part), ens.predict_proba(part), rtol=1e-6, atol=1e-9)
    assert "_rows_fn" in model.__dict__ and model.__dict__["_rows_fn"] is not None


def test_a_model_without_a_row_path_uses_the_pipeline():
    df = make_mixed_table(300, seed=1)
    df["note"] = np.where(df["plan"] == "monthly", "called twice about the bill", "quiet customer, long contract")
    schema = infer_schema(df, "churn", overrides={"note": "text"})
    classes, y = np.unique(df["churn"], return_inverse=True)
    linear = get_family("linear")
    ens = WeightedEnsemble({"linear": make_preprocessor(schema, "linear", Task.BINARY)}, [("linear", linear.make(Task.BINARY, 0))],
                           [1.0], "binary", 2).fit(df.drop(columns=["churn"]), y)
    model = TrainyardModel(ens, task=Task.BINARY, schema=schema, classes=classes)
    assert compile_rows(model) is None  # a text column: TF-IDF has no row path
    row = df.drop(columns=["churn"]).iloc[[0]]
    np.testing.assert_allclose(model.predict_proba_array(row), ens.predict_proba(row))
