"""The data audit: every planted problem is found, clean tables raise no false alarm."""

from __future__ import annotations

import json
import uuid

import numpy as np
import pandas as pd
import pytest
from conftest import make_mixed_table
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine

import trainyard
from trainyard.data.audit import CHECKS, AuditReport, Finding, audit, compare_splits
from trainyard.errors import ConfigError, DataError

FAST = [c for c in CHECKS if c != "label_noise"]


def checks_of(report: AuditReport, severity: str | None = None) -> set[tuple[str, str | None]]:
    return {(f.check, f.column) for f in report.findings if severity is None or f.severity == severity}


def clean_synthetic(n: int = 1500, seed: int = 0) -> pd.DataFrame:
    """A learnable mixed table with nothing wrong in it: numbers, categories, a date, a boolean."""
    rng = np.random.default_rng(seed)
    income = rng.lognormal(10, 0.6, n).round(0)
    visits = rng.poisson(3, n)
    score = rng.normal(0, 1, n)
    plan = rng.choice(["basic", "plus", "premium"], n, p=[0.5, 0.3, 0.2])
    city = rng.choice(["Lyon", "Paris", "Nantes", "Lille", "Nice"], n)
    signup = pd.Timestamp("2021-01-01") + pd.to_timedelta(rng.integers(0, 900, n), unit="D")
    active = rng.random(n) < 0.6
    logit = 1.5 * score + 0.4 * (visits - 3) + np.where(plan == "premium", 1.0, -0.3) + 0.5 * active
    y = np.where(rng.random(n) < 1 / (1 + np.exp(-4 * logit)), "yes", "no")
    return pd.DataFrame({"income": income, "visits": visits, "score": score, "plan": plan, "city": city,
                         "signup": signup.strftime("%Y-%m-%d"), "active": active, "bought": y})


def clean_regression(n: int = 1500, seed: int = 0) -> pd.DataFrame:
    """A learnable regression table (spend from visits, score and plan) with nothing wrong in it."""
    df = clean_synthetic(n, seed).drop(columns="bought")
    rng = np.random.default_rng(seed + 1)
    df["spend"] = (200 + 15 * df["visits"] + 40 * df["score"] + np.where(df["plan"] == "premium", 60.0, 0.0)
                   + rng.normal(0, 8, n)).round(2)
    return df


@pytest.fixture(scope="module")
def clean_reports():
    bc = load_breast_cancer(as_frame=True).frame
    wine = load_wine(as_frame=True).frame
    diabetes = load_diabetes(as_frame=True).frame
    return {"breast_cancer": audit(bc, target="target"), "wine": audit(wine, target="target"), "diabetes": audit(diabetes, target="target"),
            "regression": audit(clean_regression(), target="spend"),
            "synthetic": audit(clean_synthetic(), target="bought"), "mixed": audit(make_mixed_table(1500), target="churn")}


@pytest.mark.parametrize("name", ["breast_cancer", "wine", "diabetes", "regression", "synthetic", "mixed"])
def test_clean_tables_raise_no_blocking_finding_and_no_false_alarm(clean_reports, name):
    report = clean_reports[name]
    assert report.blocking == []
    assert report.warnings == [], [f.line() for f in report.warnings]
    assert not report.by_check("check_error"), [f.what for f in report.by_check("check_error")]
    for check in ("leakage", "near_duplicates", "conflicting_duplicates", "id_like", "mixed_types", "disguised_missing",
                  "inconsistent_categories", "impossible_values", "sentinel_values", "poisoning", "contamination", "outliers"):
        assert not [f for f in report.by_check(check) if check != "outliers" or f.severity != "info"], \
            (check, [f.line() for f in report.by_check(check)])


def test_report_is_ranked_and_serialises(clean_reports):
    df = make_mixed_table(800)
    df["leak"] = (df["churn"] == "yes").astype(int)
    df["empty"] = np.nan
    report = audit(df, target="churn", checks=FAST)
    ranks = [("blocking", "warning", "info").index(f.severity) for f in report.findings]
    assert ranks == sorted(ranks) and report.findings[0].check == "leakage"
    d = json.loads(report.to_json())
    assert d["summary"]["blocking"] == 1 and {f["check"] for f in d["findings"]} >= {"leakage", "missing_values"}
    assert all({"severity", "column", "what", "why", "fix"} <= set(f) for f in d["findings"])
    html = report.to_html()
    assert html.startswith("<!doctype html>") and "<svg" in html and "leak" in html
    assert "http" not in html and "<script src" not in html  # self-contained: nothing fetched
    assert "Class balance" in html and "Missing values" in html and "alone vs the target" in html


def test_trainyard_audit_is_the_public_entry_point():
    assert trainyard.audit is audit
    with pytest.raises(ValueError):
        Finding("x", "fatal", "w", "y", "f")


def test_errors_name_the_problem_and_the_fix(tmp_path):
    df = make_mixed_table(100)
    with pytest.raises(DataError, match="did you mean 'churn'"):
        audit(df, target="chrn")
    with pytest.raises(ConfigError, match="--sensitive"):
        audit(df, target="churn", sensitive=["sexx"])
    with pytest.raises(ConfigError, match="not an audit check"):
        audit(df, target="churn", checks=["leakk"])
    with pytest.raises(ConfigError, match="Unknown audit option"):
        audit(df, target="churn", missing_treshold=0.2)
    broken = tmp_path / "broken.csv"
    broken.write_bytes(b"\x00\x01\x02garbage")
    with pytest.raises(DataError):
        audit(broken, target="y")


# --- missing values -------------------------------------------------------------------------------------------


def test_missing_columns_rows_and_target():
    df = clean_synthetic(1000)
    rng = np.random.default_rng(1)
    df.loc[rng.random(len(df)) < 0.7, "score"] = np.nan
    df["blank"] = np.nan
    df.loc[:29, ["income", "visits", "plan", "city", "signup"]] = None
    df.loc[40:49, "bought"] = None
    report = audit(df, target="bought", checks=["missing"])
    assert ("missing_values", "score") in checks_of(report, "warning")
    assert ("missing_values", "blank") in checks_of(report, "warning")
    rows = report.by_check("missing_rows")[0]
    assert rows.data["rows"] == 30 and rows.severity == "warning"
    assert report.by_check("missing_target")[0].data["rows"] == 10
    assert audit(df, target="bought", checks=["missing"], missing_threshold=0.8).by_check("missing_values")[0].column != "score"


# --- duplicates ------------------------------------------------------------------------------------------------


def test_exact_duplicates_and_conflicting_labels():
    df = clean_synthetic(1000)
    copies = df.iloc[:40].copy()
    flipped = df.iloc[100:110].copy()
    flipped["bought"] = np.where(flipped["bought"] == "yes", "no", "yes")
    report = audit(pd.concat([df, copies, flipped], ignore_index=True), target="bought", checks=["duplicates"])
    dup = report.by_check("duplicate_rows")[0]
    assert dup.data["rows"] == 40 and dup.severity == "warning"
    conflict = report.by_check("conflicting_duplicates")[0]
    assert conflict.data["rows"] == 20 and conflict.data["groups"] == 10


def test_near_duplicates_after_normalising_text_and_rounding():
    df = clean_synthetic(1000)
    near = df.iloc[:30].copy()
    near["city"] = near["city"].str.upper() + "  "
    near["score"] = near["score"] * (1 + 1e-6)
    near["plan"] = near["plan"].str.replace("s", "s.", n=1) + "!"  # "basic" -> "bas.ic!": punctuation inside the text
    report = audit(pd.concat([df, near], ignore_index=True), target="bought", checks=["duplicates", "near_duplicates"])
    assert not report.by_check("duplicate_rows")
    assert report.by_check("near_duplicates")[0].data["rows"] == 30


def test_near_duplicates_ignore_identifier_columns():
    df = clean_synthetic(600)
    df = pd.concat([df, df.iloc[:20]], ignore_index=True)
    df.insert(0, "order_id", [uuid.uuid4().hex for _ in range(len(df))])
    report = audit(df, target="bought", checks=["duplicates", "near_duplicates"])
    assert not report.by_check("duplicate_rows")  # the ids differ ...
    assert report.by_check("near_duplicates")[0].data["rows"] == 20  # ... but the rows are the same


# --- constant and id-like columns ------------------------------------------------------------------------------


def test_constant_and_near_constant_columns():
    df = clean_synthetic(1000)
    df["country"] = "FR"
    df["flag"] = 0
    df.loc[:4, "flag"] = 1
    report = audit(df, target="bought", checks=["constant"])
    assert ("constant", "country") in checks_of(report, "warning")
    assert ("near_constant", "flag") in checks_of(report, "info")
    assert not {c for c, col in checks_of(report) if col in ("income", "plan", "active")}


def test_id_like_columns_uuid_hash_counter_and_row_number():
    df = clean_synthetic(500)
    rng = np.random.default_rng(0)
    df["uuid"] = [str(uuid.uuid4()) for _ in range(len(df))]
    df["sha"] = [uuid.uuid4().hex + uuid.uuid4().hex for _ in range(len(df))]
    df["counter"] = np.arange(1000, 1000 + len(df))
    df["row_number"] = rng.permutation(len(df))
    report = audit(df, target="bought", checks=["id_like"])
    kinds = {f.column: f.data["kind"] for f in report.by_check("id_like")}
    assert kinds == {"uuid": "uuid", "sha": "hash", "counter": "counter", "row_number": "counter"}


# --- leakage ---------------------------------------------------------------------------------------------------


def test_leakage_copy_proxy_and_post_outcome_column_are_blocking():
    df = clean_synthetic(2000)
    rng = np.random.default_rng(3)
    yes = (df["bought"] == "yes").to_numpy()
    df["bought_flag"] = yes.astype(int)  # a recoding of the target
    df["refund_code"] = np.where(yes ^ (rng.random(len(df)) < 0.005), "R1", "R0")  # 99.5% agreement
    df["delivery_date"] = np.where(yes, (pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 300, len(df)), unit="D")).strftime("%Y-%m-%d"), None)
    report = audit(df, target="bought", checks=["leakage"])
    blocking = {f.column for f in report.blocking}
    assert blocking == {"bought_flag", "refund_code", "delivery_date"}
    assert "only after the outcome" in next(f.what for f in report.blocking if f.column == "delivery_date")
    assert not {f.column for f in report.findings} & {"income", "visits", "score", "plan", "city"}


def test_leakage_in_regression_copy_and_transform_of_the_target():
    rng = np.random.default_rng(0)
    n = 1500
    x = rng.normal(size=(n, 3))
    price = 50 + 10 * x[:, 0] + 5 * x[:, 1] + rng.normal(0, 8, n)
    df = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "price": price,
                       "price_with_tax": price * 1.2, "log_price": np.log(price - price.min() + 1)})
    report = audit(df, target="price", checks=["leakage"])
    assert {f.column for f in report.blocking} == {"price_with_tax", "log_price"}
    assert "copy or monotone transform" in report.blocking[0].what


def test_post_outcome_columns_in_multiclass_and_regression_tables_are_blocking():
    wine = load_wine(as_frame=True).frame
    rng = np.random.default_rng(0)
    last = wine["target"] == 2  # one class of three: missingness alone cannot reach a high 3-class balanced accuracy
    wine["recall_date"] = np.where(last, (pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 300, len(wine)), unit="D")).strftime("%Y-%m-%d"), None)
    found = audit(wine, target="target", checks=["leakage"])
    assert [f.column for f in found.blocking] == ["recall_date"] and "class '2'" in found.blocking[0].what
    diabetes = load_diabetes(as_frame=True, scaled=False).frame
    high = diabetes["target"] > diabetes["target"].median()
    diabetes["readmission_cost"] = np.where(high, rng.normal(900, 200, len(diabetes)).round(2), np.nan)
    found = audit(diabetes, target="target", checks=["leakage"])
    assert [f.column for f in found.blocking] == ["readmission_cost"] and "rank AUC" in found.blocking[0].what
    assert not audit(load_diabetes(as_frame=True, scaled=False).frame, target="target", checks=["leakage"]).findings


def test_text_recoding_of_a_regression_target_is_a_leak_and_a_random_code_is_not():
    df = load_diabetes(as_frame=True, scaled=False).frame
    df["outcome_code"] = "code_" + df["target"].astype(int).astype(str)  # most codes too rare to recur across folds
    df["ward"] = "W" + pd.Series(np.random.default_rng(0).integers(0, 150, len(df))).astype(str)  # as many values, unrelated
    found = audit(df, target="target", checks=["leakage"])
    assert [f.column for f in found.findings] == ["outcome_code"] and "recoding of the target" in found.findings[0].what
    assert found.findings[0].severity == "warning"  # a lookup (model name -> list price) can be legitimate


def test_user_ignored_columns_are_not_leaks():
    df = clean_synthetic(800)
    df["bought_flag"] = (df["bought"] == "yes").astype(int)
    report = audit(df, target="bought", checks=["leakage"], roles={"bought_flag": "ignore"})
    assert not report.blocking


# --- class balance and label noise ------------------------------------------------------------------------------


def test_class_imbalance_says_what_trainyard_does():
    rng = np.random.default_rng(0)
    n = 2000
    df = pd.DataFrame({"x": rng.normal(size=n), "z": rng.normal(size=n)})
    df["fraud"] = np.where(rng.random(n) < 0.04, "fraud", "ok")
    df.loc[:2, "fraud"] = "chargeback"
    report = audit(df, target="fraud", checks=["class_balance"])
    imb = report.by_check("class_imbalance")[0]
    assert imb.severity == "warning" and "class weights" in imb.fix and "stratif" in imb.fix
    assert report.by_check("rare_classes")[0].data["classes"] == {"chargeback": 3}


def test_label_noise_found_with_confident_learning():
    df = load_breast_cancer(as_frame=True).frame
    rng = np.random.default_rng(0)
    flipped = rng.choice(len(df), 40, replace=False)
    df.loc[df.index[flipped], "target"] = 1 - df.loc[df.index[flipped], "target"]
    report = audit(df, target="target", checks=["label_noise"])
    noise = report.by_check("label_noise")[0]
    assert noise.severity == "warning"
    flagged = {e["row"] for e in noise.data["examples"]}
    assert len(flagged & set(df.index[flipped])) >= 0.8 * len(flagged)  # the most suspicious rows are the planted ones


def test_label_noise_without_cleanlab_uses_confident_learning_by_hand(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "cleanlab.filter", None)  # `from cleanlab.filter import ...` now raises ImportError
    df = load_breast_cancer(as_frame=True).frame
    flipped = np.random.default_rng(0).choice(len(df), 40, replace=False)
    df.loc[df.index[flipped], "target"] = 1 - df.loc[df.index[flipped], "target"]
    noise = audit(df, target="target", checks=["label_noise"]).by_check("label_noise")[0]
    assert "computed by trainyard" in noise.data["method"] and noise.severity == "warning"
    flagged = {e["row"] for e in noise.data["examples"]}
    assert len(flagged & set(df.index[flipped])) >= 0.8 * len(flagged)
    assert noise.data["rows"] >= 20  # most of the 40 flips are found, not just a handful
    clean = audit(load_breast_cancer(as_frame=True).frame, target="target", checks=["label_noise"])
    assert not [f for f in clean.by_check("label_noise") if f.severity != "info"]


def test_label_noise_on_a_wide_table_models_the_most_predictive_columns():
    df = load_breast_cancer(as_frame=True).frame
    rng = np.random.default_rng(0)
    df = pd.concat([df, pd.DataFrame(rng.normal(size=(len(df), 120)), columns=[f"noise_{i}" for i in range(120)])], axis=1)
    flipped = rng.choice(len(df), 40, replace=False)
    df.loc[df.index[flipped], "target"] = 1 - df.loc[df.index[flipped], "target"]
    noise = audit(df, target="target", checks=["label_noise"]).by_check("label_noise")[0]
    assert noise.severity == "warning" and "the 100 columns that predict the target best alone, of 150" in noise.sampled
    flagged = {e["row"] for e in noise.data["examples"]}
    assert len(flagged & set(df.index[flipped])) >= 0.8 * len(flagged)


def test_nested_json_cells_are_audited_as_text(tmp_path):
    rows = [{"user": {"id": i % 7, "tier": "gold" if i % 3 else "basic"}, "tags": ["a", "b"][: i % 3], "x": i * 0.5, "y": i % 2}
            for i in range(200)]
    path = tmp_path / "nested.jsonl"
    pd.DataFrame(rows).to_json(path, orient="records", lines=True)
    report = audit(path, target="y")
    assert not report.by_check("check_error"), [f.what for f in report.by_check("check_error")]
    assert {c["name"] for c in report.columns} == {"user", "tags", "x", "y"}


def test_label_noise_in_regression_targets_is_found_from_out_of_fold_residuals():
    df = clean_regression(1500)
    rng = np.random.default_rng(3)
    planted = rng.choice(len(df), 30, replace=False)
    df.loc[df.index[planted[:15]], "spend"] *= 10  # unit mistakes
    df.loc[df.index[planted[15:]], "spend"] = df["spend"].to_numpy()[rng.permutation(len(df))[:15]]  # values from other rows
    noise = audit(df, target="spend", checks=["label_noise"]).by_check("label_noise")
    assert noise and noise[0].severity == "warning" and "residual" in noise[0].what
    flagged = [e["row"] for e in noise[0].data["examples"]]
    assert set(flagged[:15]) <= set(df.index[planted])  # the largest residuals are the planted rows
    assert noise[0].data["rows"] >= 20


# --- outliers, impossible values, types ------------------------------------------------------------------------


def test_outliers_and_impossible_values():
    df = clean_synthetic(1000)
    rng = np.random.default_rng(0)
    df["age"] = rng.integers(18, 80, len(df))
    df.loc[:2, "age"] = -4
    df.loc[3, "age"] = 430
    df.loc[10:13, "income"] = 1e12
    df.loc[20:29, "visits"] = -999
    df.loc[30:33, "signup"] = "2199-01-01"
    df["monthly_salary"] = rng.normal(3000, 400, len(df)).round(0)
    df.loc[40:42, "monthly_salary"] = -3100
    report = audit(df, target="bought", checks=["outliers"])
    found = checks_of(report, "warning")
    assert ("impossible_values", "monthly_salary") in found
    assert {("impossible_values", "age"), ("outliers", "income"), ("sentinel_values", "visits"), ("impossible_values", "signup")} <= found
    assert next(f for f in report.findings if f.column == "age").data["rows"] == 4


def test_mixed_types_inconsistent_categories_text_dates_and_placeholders():
    df = clean_synthetic(1000)
    rng = np.random.default_rng(0)
    df["qty"] = pd.Series(rng.integers(1, 50, len(df)).astype(str), dtype=object)
    df.loc[:20, "qty"] = "twelve"
    df.loc[21:25, "qty"] = 12.0
    df["state"] = rng.choice(["NY", "CA", "TX"], len(df))
    df.loc[:15, "state"] = "ny "
    df.loc[16:25, "state"] = "New York"
    df["review"] = [" ".join(rng.choice(["great", "slow", "broken", "fine", "cheap", "refund", "love"], 8)) for _ in range(len(df))]
    df["zip"] = pd.Series(rng.integers(0, 400, len(df))).map(lambda v: f"Z{v:03d}")
    df.loc[40:60, "plan"] = "unknown"
    report = audit(df, target="bought", checks=["types"])
    assert report.by_check("mixed_types")[0].column == "qty"
    variants = report.by_check("inconsistent_categories")[0]
    assert variants.column == "state" and sorted(variants.data["variants"][0]) == ["NY", "New York", "ny"]
    assert ("free_text", "review") in checks_of(report)
    assert ("datetime_as_text", "signup") in checks_of(report)
    assert ("high_cardinality", "zip") in checks_of(report)
    assert ("disguised_missing", "plan") in checks_of(report, "warning")


# --- splits -----------------------------------------------------------------------------------------------------


def test_contamination_and_shift_between_train_and_test():
    df = clean_synthetic(1200)
    train, test = df.iloc[:900], df.iloc[900:].copy()
    assert compare_splits(train, test, "bought") == []
    leaked = pd.concat([test, train.iloc[:30]])
    found = compare_splits(train, leaked, "bought")
    assert [f.check for f in found] == ["contamination"] and found[0].severity == "blocking" and found[0].data["rows"] == 30
    retyped = train.iloc[:30].assign(city=lambda d: d["city"].str.upper() + ".", score=lambda d: d["score"] * (1 + 1e-7))
    found = compare_splits(train, pd.concat([test, retyped]), "bought")  # the same rows written a little differently
    near = next(f for f in found if f.check == "contamination")  # (the re-typed city values also shift that column)
    assert near.data["near_rows"] == 30 and near.data["identical_rows"] == 0 and "rounded" in near.what
    shifted = test.copy()
    shifted["income"] = shifted["income"] * 3
    found = compare_splits(train, shifted, "bought")
    assert [(f.check, f.column, f.severity) for f in found] == [("shift", "income", "warning"), ("domain_shift", None, "warning")]
    assert found[1].data["top_columns"][0] == "income"


def test_domain_classifier_finds_a_shift_in_how_columns_go_together():
    df = clean_synthetic(3000)
    train, test = df.iloc[:2000], df.iloc[2000:].copy()
    assert not [f for f in compare_splits(train, test, "bought") if f.severity != "info"]  # a random split
    # same values per column, but in the test rows score now rises with income: no column alone has moved
    test["score"] = np.sort(test["score"].to_numpy())[test["income"].rank(method="first").astype(int).to_numpy() - 1]
    found = compare_splits(train, test, "bought")
    assert not [f for f in found if f.check == "shift"]
    domain = [f for f in found if f.check == "domain_shift"]
    assert domain and domain[0].severity == "warning" and set(domain[0].data["top_columns"][:2]) == {"income", "score"}


def test_audit_with_a_test_table(tmp_path):
    df = clean_synthetic(1200)
    path = tmp_path / "test.csv"
    pd.concat([df.iloc[900:], df.iloc[:50]]).to_csv(path, index=False)
    report = audit(df.iloc[:900], target="bought", test=path, checks=["missing"])
    assert report.by_check("contamination")[0].data["rows"] == 50


# --- sensitive groups and poisoning -----------------------------------------------------------------------------


def test_sensitive_groups_counts_rates_and_small_groups():
    df = clean_synthetic(1000)
    rng = np.random.default_rng(0)
    df["sex"] = rng.choice(["F", "M"], len(df))
    df.loc[:11, "sex"] = "X"
    report = audit(df, target="bought", sensitive="sex", checks=["sensitive"])
    info = report.by_check("sensitive_groups")[0]
    groups = {g["group"]: g for g in info.data["groups"]}
    assert groups["X"]["rows"] == 12 and 0 <= groups["F"]["label_rate"] <= 1
    assert report.by_check("small_groups")[0].data["groups"][0]["group"] == "X"


def test_poisoning_repeated_rare_pattern_with_flipped_label():
    df = clean_synthetic(2000)
    clear_yes = df[(df["score"] > 1.5) & (df["bought"] == "yes")].iloc[:1]
    poison = pd.concat([clear_yes] * 6, ignore_index=True)
    poison["bought"] = "no"
    report = audit(pd.concat([df, poison], ignore_index=True), target="bought", checks=["poisoning"])
    found = report.by_check("poisoning")
    assert found and found[0].data["patterns"][0]["copies"] == 6 and found[0].data["patterns"][0]["label"] == "no"


def test_poisoning_extreme_values_concentrated_in_one_class():
    df = clean_synthetic(2000)
    idx = df.index[:12]
    df.loc[idx, "visits"] = 5000
    df.loc[idx, "bought"] = "no" if (df["bought"] == "no").mean() < 0.5 else "yes"
    report = audit(df, target="bought", checks=["poisoning"])
    assert ("poisoning", "visits") in checks_of(report, "warning")


def test_big_tables_sample_heavy_checks_and_say_so():
    df = clean_synthetic(3000)
    report = audit(df, target="bought", checks=["leakage", "near_duplicates", "label_noise"],
                   leakage_rows=1000, near_duplicate_rows=1000, model_rows=800)
    df2 = pd.concat([df, df.iloc[:5].assign(score=lambda d: d["score"] + 1e-9)], ignore_index=True)
    assert report.blocking == []
    near = audit(df2, target="bought", checks=["near_duplicates"], near_duplicate_rows=1000)
    assert all("sample" in (f.sampled or "") for f in near.findings)
    assert report.settings["leakage_rows"] == 1000


def test_split_column_contamination_and_shift():
    df = clean_synthetic(1200)
    df["part"] = np.where(np.arange(len(df)) < 900, "train", "test")
    copies = df.iloc[:40].assign(part="test")
    report = audit(pd.concat([df, copies], ignore_index=True), target="bought", split_col="part", checks=["missing"])
    found = report.by_check("contamination")
    assert found and found[0].data["rows"] == 40 and found[0].data["split"]["other"] == "test"
    assert "'test' vs 'train'" in found[0].what
    assert not audit(df, target="bought", split_col="part", checks=["missing"]).by_check("contamination")


def test_regression_and_no_target_audits_run_every_check():
    rng = np.random.default_rng(0)
    df = clean_synthetic(800).drop(columns="bought")
    df["spend"] = 5 * df["visits"] + 20 * df["score"] + rng.normal(0, 30, len(df))
    report = audit(df, target="spend")
    assert report.task == "regression" and not report.by_check("check_error") and not report.blocking
    assert not [f for f in report.by_check("label_noise") if f.severity != "info"]  # residual outliers: none planted
    untargeted = audit(df)
    assert untargeted.target is None and not untargeted.by_check("check_error") and untargeted.blocking == []


def test_schema_identifiers_are_reported():
    df = clean_synthetic(1500)
    df["customer_no"] = np.random.default_rng(0).choice(10**7, len(df), replace=False)
    report = audit(df, target="bought", checks=["id_like"])
    assert [f.column for f in report.by_check("id_like")] == ["customer_no"]


def test_confident_learning_starts_no_process_pool(monkeypatch):
    """The labelling server runs it in a thread: a pool forked from a threaded process left children deadlocked that
    outlived the server (a CI run hung on them). cleanlab is told to stay in this process."""
    pytest.importorskip("cleanlab")
    import multiprocessing.pool

    from trainyard.data.audit.noise import confident_learning

    pools = []
    real = multiprocessing.pool.Pool.__init__
    monkeypatch.setattr(multiprocessing.pool.Pool, "__init__", lambda self, *a, **k: (pools.append(a), real(self, *a, **k))[1])
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 3, 600)
    proba = rng.dirichlet(np.ones(3), 600) * 0.4 + 0.6 * np.eye(3)[codes]
    proba[:30] = np.eye(3)[(codes[:30] + 1) % 3] * 0.9 + 0.05  # 30 rows the model is sure are of another class
    issues, method = confident_learning(codes, proba)
    assert "cleanlab" in method and set(range(30)) <= set(issues.tolist())
    assert pools == []
