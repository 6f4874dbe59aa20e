"""Every number in the evaluation report, recomputed independently (scikit-learn, pandas, by hand)."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

import trainyard
from trainyard.data.schema import infer_schema
from trainyard.models.model import TrainyardModel
from trainyard.models.families import get_family
from trainyard.tasks import Task

N_BOOT = 200


def fit_model(df, target, task, family="lightgbm", **params):
    schema = infer_schema(df, target)
    classes = np.sort(df[target].unique()) if task.is_classification else None
    y = np.searchsorted(classes, df[target]) if classes is not None else df[target].to_numpy(float)
    fam = get_family(family)
    pipe = fam.build(schema, task, {"n_estimators": 40, **params} if family == "lightgbm" else params, seed=0)
    pipe.fit(df[schema.features()], y)
    metric = {Task.BINARY: "roc_auc", Task.MULTICLASS: "accuracy", Task.REGRESSION: "rmse"}[task]
    return TrainyardModel(pipe, task=task, schema=schema, classes=classes, family=family, metric=metric)


@pytest.fixture(scope="module")
def binary_case():
    from conftest import make_mixed_table

    df = make_mixed_table(900, seed=3)
    train, test = df.iloc[:600], df.iloc[600:].reset_index(drop=True)
    model = fit_model(train, "churn", Task.BINARY)
    report = trainyard.evaluate(model, test, sensitive=["region"], slices=["plan=monthly", "tenure > 40"], n_boot=N_BOOT)
    return model, test, report


def test_binary_metrics_match_sklearn(binary_case):
    model, test, report = binary_case
    proba = model.predict_proba_array(test)
    y = (test["churn"] == "yes").to_numpy().astype(int)
    pred = proba.argmax(axis=1)
    expected = {
        "roc_auc": skm.roc_auc_score(y, proba[:, 1]), "accuracy": skm.accuracy_score(y, pred),
        "balanced_accuracy": skm.balanced_accuracy_score(y, pred), "f1": skm.f1_score(y, pred),
        "precision": skm.precision_score(y, pred), "recall": skm.recall_score(y, pred),
        "pr_auc": skm.average_precision_score(y, proba[:, 1]), "log_loss": skm.log_loss(y, proba),
        "brier": skm.brier_score_loss(y, proba[:, 1]),
    }
    got = report.metrics
    assert set(got) == set(expected)
    for name, value in expected.items():
        assert got[name]["value"] == pytest.approx(value, abs=1e-9), name
        assert got[name]["ci_low"] <= value <= got[name]["ci_high"], name
    # The baseline (no meta: this data's own majority class and prior) recomputed by hand.
    share = y.mean()
    base_pred = np.full(len(y), int(share > 0.5))
    assert got["accuracy"]["baseline"] == pytest.approx(skm.accuracy_score(y, base_pred))
    assert got["log_loss"]["baseline"] == pytest.approx(skm.log_loss(y, np.tile([1 - share, share], (len(y), 1))))
    assert got["roc_auc"]["baseline"] == pytest.approx(0.5)
    assert "computed from the evaluation rows" in report["baseline"]["description"]


def test_per_class_confusion_worst_rows_and_calibration_match(binary_case):
    model, test, report = binary_case
    proba = model.predict_proba_array(test)
    y = (test["churn"] == "yes").to_numpy().astype(int)
    pred = proba.argmax(axis=1)
    p, r, f, s = skm.precision_recall_fscore_support(y, pred, labels=[0, 1], zero_division=0)
    for c, row in enumerate(report["per_class"]):
        assert (row["precision"], row["recall"], row["f1"], row["support"]) == pytest.approx((p[c], r[c], f[c], s[c]))
    assert report["errors"]["confusion"]["matrix"] == skm.confusion_matrix(y, pred).tolist()
    loss = -np.log(proba[np.arange(len(y)), y])
    worst = report["errors"]["worst_rows"]
    assert [w["row"] for w in worst] == list(test.index[np.argsort(-loss, kind="mergesort")[:10]])
    assert worst[0]["loss"] == pytest.approx(loss.max())
    # ECE by hand with pandas: 10 equal-width bins of the positive-class probability.
    frame = pd.DataFrame({"p": proba[:, 1], "y": y, "bin": pd.cut(proba[:, 1], np.linspace(0, 1, 11), include_lowest=True)})
    by_bin = frame.groupby("bin", observed=True).agg(p=("p", "mean"), y=("y", "mean"), n=("y", "size"))
    ece = float((by_bin.n * (by_bin.p - by_bin.y).abs()).sum() / len(y))
    assert report["calibration"]["reliability"]["ece"] == pytest.approx(ece)
    assert sum(report["calibration"]["reliability"]["count"]) == len(y)


def test_explanations_match_sklearn_and_lightgbm(binary_case):
    from sklearn.inspection import permutation_importance

    from trainyard.evaluation.explain import contributions
    from trainyard.models.unwrap import tree_parts

    model, test, report = binary_case
    y = (test["churn"] == "yes").to_numpy().astype(int)
    X = test[model.features]
    direct = permutation_importance(model.pipeline, X, y, n_repeats=5, random_state=0,
                                    scoring=lambda est, X_, y_: skm.roc_auc_score(y_, est.predict_proba(X_)[:, 1]))
    got = {r["column"]: r["importance"] for r in report["explanations"]["permutation_importance"]}
    for col, value in zip(X.columns, direct.importances_mean):
        assert got[col] == pytest.approx(value, abs=1e-9), col
    contrib = contributions(model, X)
    assert list(contrib.columns[:-1]) == model.features or set(contrib.columns[:-1]) == set(model.features)
    # AutoML's model is an ensemble of LightGBM models: contributions add up to their weighted raw scores
    parts = tree_parts(model)
    assert parts is not None and parts.libraries == {"lightgbm"} and report["explanations"]["contributions"]["library"] == "lightgbm"
    raw = sum(w * est.predict(parts.prep.transform(X), raw_score=True) for w, _, est in parts.members)
    np.testing.assert_allclose(contrib.sum(axis=1).to_numpy(), raw, atol=1e-6)
    if len(parts.members) == 1:  # then that is the model's own log-odds
        np.testing.assert_allclose(1 / (1 + np.exp(-raw)), model.predict_proba_array(X)[:, 1], atol=1e-9)
    mean_abs = {r["column"]: r["mean_abs_contribution"] for r in report["explanations"]["contributions"]["mean_abs"]}
    for col, v in mean_abs.items():
        assert v == pytest.approx(contrib[col].abs().mean())


def test_fairness_and_slices_match_pandas(binary_case):
    from fairlearn.metrics import demographic_parity_difference

    model, test, report = binary_case
    proba = model.predict_proba_array(test)
    frame = pd.DataFrame({"y": (test["churn"] == "yes").astype(int), "pred": proba.argmax(axis=1),
                          "g": test["region"].fillna("(missing)")})
    (col,) = report["fairness"]["columns"]
    for g in col["groups"]:
        part = frame[frame.g == g["group"]]
        assert g["rows"] == len(part)
        assert g["metrics"]["accuracy"]["value"] == pytest.approx((part.y == part.pred).mean())
        if not g["small"]:
            assert g["selection_rate"] == pytest.approx(part.pred.mean())
    big = frame[frame.g.isin([g["group"] for g in col["groups"] if not g["small"]])]
    rates = big.groupby("g").pred.mean()
    assert col["gaps"]["demographic_parity_difference"]["value"] == pytest.approx(rates.max() - rates.min())
    assert col["gaps"]["demographic_parity_difference"]["value"] == pytest.approx(
        demographic_parity_difference(big.y, big.pred, sensitive_features=big.g))
    assert col["gaps"]["disparate_impact_ratio"]["value"] == pytest.approx(rates.min() / rates.max())
    monthly, old = report["slices"]["user"]
    mask = (test["plan"] == "monthly").to_numpy()
    assert monthly["rows"] == mask.sum()
    assert monthly["accuracy"]["value"] == pytest.approx((frame.y == frame.pred)[mask].mean())
    assert old["rows"] == (test["tenure"] > 40).sum()
    worst = report["slices"]["worst"]["slices"]
    assert worst, "the automatic search found no slice worse than overall"
    errors = [1 - s["accuracy"]["value"] for s in worst]
    assert errors == sorted(errors, reverse=True)
    assert all(e > 1 - report["slices"]["worst"]["overall"]["accuracy"] for e in errors)


def test_regression_report_matches_sklearn(tmp_path):
    from sklearn.datasets import load_diabetes

    df = load_diabetes(as_frame=True).frame
    train, test = df.iloc[:300], df.iloc[300:].reset_index(drop=True)
    model = fit_model(train, "target", Task.REGRESSION, family="linear")
    report = trainyard.evaluate(model, test, n_boot=N_BOOT)
    y, pred = test["target"].to_numpy(), model.predict(test)
    expected = {"rmse": np.sqrt(skm.mean_squared_error(y, pred)), "mae": skm.mean_absolute_error(y, pred),
                "r2": skm.r2_score(y, pred), "mape": skm.mean_absolute_percentage_error(y, pred)}
    for name, value in expected.items():
        assert report.metrics[name]["value"] == pytest.approx(value), name
    assert report.metrics["rmse"]["baseline"] == pytest.approx(np.sqrt(np.mean((y - y.mean()) ** 2)))
    res = report["errors"]["residuals"]
    assert res["mean"] == pytest.approx(np.mean(y - pred)) and res["std"] == pytest.approx(np.std(y - pred))
    assert report["explanations"]["contributions"] is None  # a linear model: said plainly, not faked
    assert "LightGBM or XGBoost" in report["explanations"]["contributions_note"]
    html = report.to_html()
    assert "Residuals" in html and html.count("data:image/png;base64,") >= 3


def test_multiclass_report_matches_sklearn():
    from sklearn.datasets import load_wine

    df = load_wine(as_frame=True).frame
    df["target"] = df["target"].map({0: "a", 1: "b", 2: "c"})
    train, test = df.sample(frac=0.6, random_state=0), None
    test = df.drop(train.index).reset_index(drop=True)
    model = fit_model(train, "target", Task.MULTICLASS, family="lightgbm", min_child_samples=5)
    report = trainyard.evaluate(model, test, n_boot=N_BOOT)
    proba = model.predict_proba_array(test)
    y = np.searchsorted(model.classes, test["target"])
    pred = proba.argmax(axis=1)
    assert report.metrics["accuracy"]["value"] == pytest.approx(skm.accuracy_score(y, pred))
    assert report.metrics["f1_macro"]["value"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert report.metrics["log_loss"]["value"] == pytest.approx(skm.log_loss(y, proba))
    assert report.metrics["roc_auc"]["value"] == pytest.approx(skm.roc_auc_score(y, proba, multi_class="ovr"))
    assert report["calibration"]["reliability"]["kind"] == "top-label confidence"
    assert report["errors"]["confusion"]["labels"] == ["a", "b", "c"]


def test_html_opens_offline_with_embedded_plots(binary_case, tmp_path):
    _, _, report = binary_case
    paths = report.save(tmp_path, "r")
    html = paths["html"].read_text()
    assert not re.findall(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html, flags=re.I)
    assert "<link" not in html and "<script" not in html
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) >= 4
    assert all(base64.b64decode(b)[:8] == b"\x89PNG\r\n\x1a\n" for b in images)
    data = json.loads(paths["json"].read_text())  # strict JSON: NaN would not parse in a browser
    assert data["metrics"][0]["metric"] == "roc_auc"
    md = paths["markdown"].read_text()
    assert "| roc_auc |" in md and "## Fairness" in md and "## Limitations" in md


def test_evaluate_needs_the_target_and_known_sensitive_columns(binary_case):
    from trainyard.errors import ConfigError

    model, test, _ = binary_case
    with pytest.raises(ConfigError, match="has no 'churn' column"):
        trainyard.evaluate(model, test.drop(columns="churn"))
    with pytest.raises(ConfigError, match="did you mean 'region'"):
        trainyard.evaluate(model, test, sensitive="regoin")
    with pytest.raises(ConfigError, match="Cannot evaluate the slice"):
        trainyard.evaluate(model, test, slices=["nonsense >>> 3"], n_boot=20)


def test_model_card_lists_audit_findings_when_present():
    from trainyard.evaluation.card import model_card

    evaluation = {"metrics": [], "metric": "roc_auc", "dataset": {"rows": 10}, "baseline": {"description": "x"}}
    meta = {"name": "m", "task": "binary", "target": "y", "schema": {"columns": []},
            "audit": {"summary": {"rows": 500, "blocking": 0, "warning": 1, "info": 0},
                      "findings": [{"check": "duplicate_rows", "severity": "warning", "what": "12 rows are exact duplicates", "fix": "drop them"}]}}
    md = model_card(evaluation, meta, version=1).to_markdown()
    assert "Audit of 500 rows: 0 blocking, 1 warning, 0 info." in md
    assert "warning duplicate_rows: 12 rows are exact duplicates Fix: drop them" in md
    assert "No audit findings were recorded" in model_card(evaluation, {**meta, "audit": None}, version=1).to_markdown()


def test_permutation_importance_fits_a_time_budget(binary_case):
    from trainyard.evaluation.explain import permutation_importance
    from trainyard.metrics import get_metric

    model, test, _ = binary_case
    y = (test["churn"] == "yes").to_numpy().astype(int)
    metric = get_metric("roc_auc", model.task)
    # no time at all: nothing is computed (the report then says it was skipped and how to get it)
    assert permutation_importance(model, test, y, metric, seconds=1e-9) == []
    roomy = permutation_importance(model, test, y, metric, seconds=1e6)
    assert {r["repeats"] for r in roomy} == {5} and {r["rows"] for r in roomy} == {min(2000, len(test))}
    assert [r["column"] for r in roomy] == [r["column"] for r in permutation_importance(model, test, y, metric)]
