"""Preparation: out-of-fold target encoding, rare-category grouping, robust dates and mixed types."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline

from trainyard.data.prepare import RARE, CategoricalCodes, make_preprocessor
from trainyard.data.schema import as_datetime, infer_schema
from trainyard.tasks import Task


def high_cardinality_table(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    shops = np.array([f"shop_{i:03d}" for i in range(300)])
    effect = rng.normal(0, 2, len(shops))
    shop = rng.integers(0, len(shops), n)
    x = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(effect[shop] + x)))).astype(int)
    return pd.DataFrame({"shop": shops[shop], "x": x, "y": y})


def test_linear_models_target_encode_high_cardinality_categoricals_out_of_fold():
    df = high_cardinality_table()
    schema = infer_schema(df, "y")
    assert schema.role("shop") == "categorical" and schema.column("shop").n_unique > 50
    prep = make_preprocessor(schema, "linear", Task.BINARY)
    assert "cat_target" in [name for name, _, _ in prep.named_steps["columns"].transformers]
    train, test = df.iloc[:2400], df.iloc[2400:]
    model = Pipeline([("prep", prep), ("model", LogisticRegression(max_iter=1000))]).fit(train, train["y"])
    auc = roc_auc_score(test["y"], model.predict_proba(test)[:, 1])
    assert auc > 0.75  # the shop effect is learned through the encoding


def test_target_encoding_of_training_rows_does_not_leak_their_own_label():
    rng = np.random.default_rng(1)
    n = 2000
    df = pd.DataFrame({"key": [f"k{i // 2}" for i in range(n)], "x": rng.normal(size=n), "y": rng.integers(0, 2, n)})
    schema = infer_schema(df, "y")
    prep = make_preprocessor(schema, "linear", Task.BINARY)
    encoded = prep.fit_transform(df, df["y"])
    names = list(prep.named_steps["columns"].get_feature_names_out())
    col = np.asarray(encoded[:, names.index(next(n for n in names if n.startswith("cat_target")))]).ravel()
    # labels are random: an in-sample mean per key (2 rows each) would correlate ~0.7 with y; out of fold it is ~0
    assert abs(np.corrcoef(col, df["y"])[0, 1]) < 0.2


def test_regression_target_encoding_is_continuous_even_with_whole_number_targets():
    df = high_cardinality_table()
    df["y"] = (df["x"] * 10).round() + 100
    prep = make_preprocessor(infer_schema(df, "y"), "linear", Task.REGRESSION)
    out = prep.fit_transform(df, df["y"].to_numpy(dtype=float))
    assert out.shape[1] < 10  # one encoded column, not one per distinct target value


def test_tree_categories_group_rare_and_unseen_values_apart_from_missing():
    X = pd.DataFrame({"c": ["a"] * 300 + ["b"] * 300 + ["once"] + [None] * 5})
    codes = CategoricalCodes(min_count=5).fit(X)
    out = codes.transform(pd.DataFrame({"c": ["a", "once", "never-seen", None]}))["c"]
    assert list(out.cat.categories) == ["a", "b", RARE]
    assert out.tolist()[:3] == ["a", RARE, RARE] and pd.isna(out.iloc[3])


def test_dates_as_strings_and_mixed_types_are_prepared_robustly():
    rng = np.random.default_rng(0)
    n = 300
    dates = pd.Series(pd.date_range("2021-01-01", periods=n, freq="D").strftime("%Y-%m-%d"))
    dates[::50] = "not a date"
    dates[1] = "2021-01-02T10:00:00+02:00"
    dates[2] = "2021-01-03T10:00:00-05:00"
    amount = pd.Series(rng.normal(100, 10, n).round(2).astype(str), dtype=object)
    amount[::40] = "twelve"
    amount[5] = 12.0
    df = pd.DataFrame({"when": dates, "amount": amount, "kind": rng.choice(["a", "b", 7], n), "y": rng.integers(0, 2, n)})
    schema = infer_schema(df, "y")
    assert schema.role("when") == "datetime" and schema.role("amount") == "numeric"
    assert as_datetime(df["when"]).notna().sum() == n - 6
    fresh = pd.DataFrame({"when": ["garbage", "2030-01-01T00:00:00+09:00"], "amount": ["n/a", 3], "kind": [None, 99]})
    linear = make_preprocessor(schema, "linear", Task.BINARY).fit(df, df["y"])
    out = linear.transform(fresh)
    values = np.asarray(out.todense() if hasattr(out, "todense") else out, dtype=float)
    assert values.shape[0] == 2 and np.isfinite(values).all()
    tree = make_preprocessor(schema, "tree", Task.BINARY).fit(df, df["y"])
    out = tree.transform(fresh)
    assert out["kind"].tolist()[1] == RARE and pd.isna(out["kind"].iloc[0])
    assert out["amount"].isna().iloc[0] and out["amount"].iloc[1] == 3
    assert out["when.year"].isna().iloc[0] and out["when.year"].iloc[1] == 2029  # 2030-01-01 09:00 +09:00 is 2029-12-31 UTC


def test_serving_fast_path_matches_the_pipeline_for_rare_and_unseen_categories(workspace, mixed_table):
    import trainyard
    from trainyard.models.rowpath import compile_rows

    model = trainyard.train(mixed_table, target="churn", include=["lightgbm"], name="rare").model
    fast = compile_rows(model)
    assert fast is not None
    rows = [{"tenure": 5, "charges": 60.0, "plan": "never-seen", "region": "north", "support_calls": 2},
            {"tenure": 30, "charges": 80.0, "plan": "monthly", "region": None, "support_calls": 1}]
    expected = model.predict_proba_array(pd.DataFrame(rows))
    assert np.allclose(fast(rows), expected, atol=1e-9)


def test_automl_linear_family_trains_on_a_high_cardinality_categorical(workspace):
    """The search fits its preprocessors with the labels: the linear kind's target encoder needs them."""
    import trainyard

    df = high_cardinality_table(1500)
    result = trainyard.train(df, target="y", include=["linear"], max_trials=1, workspace=workspace, bag_folds=0)
    board = result.leaderboard
    assert (board["status"] == "ok").all(), board[["family", "status", "message"]].to_string()
    assert result.test_score > 0.7  # the shop effect is learned through the out-of-fold encoding
