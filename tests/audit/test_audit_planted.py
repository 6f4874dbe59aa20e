"""Each problem the audit must catch, planted into real public tables (scikit-learn's bundled sets, written to CSV
and read back as a user's file would be), must be reported; the clean tables must raise no blocking finding."""

from __future__ import annotations

import hashlib
import uuid

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine

from trainyard.data.audit import audit

pytestmark = pytest.mark.slow

TABLES = {
    "breast_cancer": lambda: (load_breast_cancer(as_frame=True).frame.rename(columns={"target": "malignant"}), "malignant"),
    "wine": lambda: (load_wine(as_frame=True).frame.rename(columns={"target": "cultivar"}), "cultivar"),
    "diabetes": lambda: (load_diabetes(as_frame=True, scaled=False).frame.rename(columns={"target": "progression"}), "progression"),
}
SEVERITY = {"blocking": 0, "warning": 1, "info": 2}
REPORTED_AS_INFO = {"datetime_as_text", "free_text", "near_constant", "constant"}  # facts about the table, not problems


def classification(df, y) -> bool:
    return df[y].nunique() <= 20


def number_column(df, y) -> str:
    return next(c for c in df.columns if c != y and pd.api.types.is_numeric_dtype(df[c]) and df[c].nunique() > 20 and "age" not in c)


def dates(rng, n, fmt="%Y-%m-%d"):
    return (pd.Timestamp("2021-01-01") + pd.to_timedelta(rng.integers(0, 300, n), unit="D")).strftime(fmt)


def leak_copy(df, y, rng):
    df = df.copy()
    df["outcome_code"] = "code_" + df[y].astype(int).astype(str)
    return df, {("leakage", "outcome_code")}


def leak_proxy(df, y, rng):
    df = df.copy()
    if classification(df, y):
        df["final_score"] = pd.factorize(df[y])[0] * 10 + rng.normal(0, 0.5, len(df))
    else:
        df["final_score"] = df[y] * 1.8 + 3 + rng.normal(0, 0.01 * df[y].std(), len(df))
    return df, {("leakage", "final_score")}


def leak_post_outcome(df, y, rng):
    df = df.copy()
    filled = df[y] > df[y].median() if not classification(df, y) else df[y] == df[y].value_counts().index[-1]
    df["refund_date"] = np.where(filled, dates(rng, len(df)), None)
    return df, {("leakage", "refund_date")}


def duplicates(df, y, rng):
    return pd.concat([df, df.sample(frac=0.03, random_state=1)], ignore_index=True), {("duplicate_rows", None)}


def conflicting_labels(df, y, rng):
    if not classification(df, y):
        return None
    extra = df.sample(30, random_state=2).copy()
    labels = sorted(df[y].unique())
    extra[y] = [labels[(labels.index(v) + 1) % len(labels)] for v in extra[y]]
    return pd.concat([df, extra], ignore_index=True), {("conflicting_duplicates", y)}


def near_duplicates(df, y, rng):
    extra = df.sample(frac=0.03, random_state=3).copy()
    for c in extra.columns:
        if c != y and pd.api.types.is_float_dtype(extra[c]):
            extra[c] = extra[c] * (1 + 1e-5)
    return pd.concat([df, extra], ignore_index=True), {("near_duplicates", None)}


def noisy_labels(df, y, rng):
    df = df.copy()
    if classification(df, y):
        idx = rng.choice(len(df), int(0.08 * len(df)), replace=False)
        labels = sorted(df[y].unique())
        df.loc[idx, y] = [labels[(labels.index(v) + 1) % len(labels)] for v in df.loc[idx, y]]
    else:
        idx = rng.choice(len(df), max(8, int(0.03 * len(df))), replace=False)
        df[y] = df[y].astype(float)
        df.loc[idx, y] = df.loc[idx, y] * 10
    return df, {("label_noise", y)}


def identifiers(df, y, rng):
    df = df.copy()
    n = len(df)
    df["uuid"] = [str(uuid.UUID(int=int(v))) for v in rng.integers(0, 2**62, n)]
    df["row_no"] = rng.permutation(n) + 1000
    df["sha"] = [hashlib.sha1(str(i).encode()).hexdigest() for i in range(n)]
    df["counter"] = np.arange(n)
    return df, {("id_like", "uuid"), ("id_like", "row_no"), ("id_like", "sha"), ("id_like", "counter")}


def mixed_types(df, y, rng):
    df = df.copy()
    c = number_column(df, y)
    s = df[c].astype(object)
    s.iloc[rng.choice(len(df), max(10, len(df) // 30), replace=False)] = "twelve"
    df[c] = s
    return df, {("mixed_types", c)}


def inconsistent_categories(df, y, rng):
    df = df.copy()
    df["state"] = rng.choice(["NY", "CA", "TX"], len(df))
    df.loc[df.index[:15], "state"] = "ny "
    df.loc[df.index[15:30], "state"] = " Ny"
    return df, {("inconsistent_categories", "state")}


def dates_as_text(df, y, rng):
    df = df.copy()
    df["signup"] = dates(rng, len(df), "%d/%m/%Y")
    return df, {("datetime_as_text", "signup")}


def impossible_values(df, y, rng):
    df = df.copy()
    s = pd.Series(dates(rng, len(df)))
    s.iloc[:15] = "2199-05-01"
    df["visit_date"] = s.to_numpy()
    df["age"] = rng.integers(18, 90, len(df)).astype(float)
    df.loc[df.index[:6], "age"] = -3
    return df, {("impossible_values", "visit_date"), ("impossible_values", "age")}


def constant_columns(df, y, rng):
    df = df.copy()
    df["country"] = "FR"
    df["mostly_zero"] = 0
    df.loc[df.index[: max(1, len(df) // 200)], "mostly_zero"] = 1
    return df, {("constant", "country"), ("near_constant", "mostly_zero")}


def missing_values(df, y, rng):
    df = df.copy()
    c = number_column(df, y)
    df.loc[rng.random(len(df)) < 0.7, c] = np.nan
    return df, {("missing_values", c)}


def imbalance(df, y, rng):
    if not classification(df, y):
        return None
    minority = df[y].value_counts().index[-1]
    keep = df[df[y] != minority]
    few = df[df[y] == minority].head(max(12, int(0.03 * len(keep))))
    return pd.concat([keep, few]).sample(frac=1, random_state=0), {("class_imbalance", y)}


def sentinels_and_outliers(df, y, rng):
    df = df.copy()
    a, b = [c for c in df.columns if c != y and pd.api.types.is_float_dtype(df[c]) and df[c].nunique() > 20 and "age" not in c][:2]
    df.loc[df.index[:25], a] = -999
    df.loc[df.index[30:34], b] = df[b].median() + 1e4 * (df[b].std() + 1)
    return df, {("sentinel_values", a), ("outliers", b)}


def poisoning(df, y, rng):
    if not classification(df, y):
        return None
    counts = df[y].value_counts()
    row = df[df[y] == counts.index[0]].iloc[[0]]
    poison = pd.concat([row] * 8, ignore_index=True)
    poison[y] = counts.index[1]  # a clear example of one class, repeated with another class's label
    df = pd.concat([df, poison], ignore_index=True)
    c = number_column(df, y)
    idx = df.index[(df[y] == counts.index[-1]).to_numpy()][:12]
    df.loc[idx, c] = df[c].max() * 1000 + 1  # a trigger: extreme values that all carry one label
    return df, {("poisoning", y), ("poisoning", c)}


PLANTS = [leak_copy, leak_proxy, leak_post_outcome, duplicates, conflicting_labels, near_duplicates, noisy_labels, identifiers,
          mixed_types, inconsistent_categories, dates_as_text, impossible_values, constant_columns, missing_values, imbalance,
          sentinels_and_outliers, poisoning]


def audit_csv(df, y, path):
    df.to_csv(path, index=False)
    return audit(path, target=y)


@pytest.mark.parametrize("table", sorted(TABLES))
def test_clean_public_table_has_no_blocking_finding(table, tmp_path):
    df, y = TABLES[table]()
    report = audit_csv(df, y, tmp_path / "clean.csv")
    assert report.blocking == [] and report.warnings == [], [f.line() for f in report.findings if f.severity != "info"]


@pytest.mark.parametrize("table", sorted(TABLES))
@pytest.mark.parametrize("plant", PLANTS, ids=lambda p: p.__name__)
def test_planted_problem_is_reported(table, plant, tmp_path):
    df, y = TABLES[table]()
    planted = plant(df, y, np.random.default_rng(7))
    if planted is None:
        pytest.skip(f"{plant.__name__} needs a classification target")
    df, expected = planted
    report = audit_csv(df, y, tmp_path / "planted.csv")
    found = {(f.check, f.column): f.severity for f in report.findings}
    for check, column in expected:
        severity = found.get((check, column))
        assert severity is not None, (check, column, sorted(found))
        assert SEVERITY[severity] <= SEVERITY["warning"] or check in REPORTED_AS_INFO, (check, column, severity)
    assert not report.by_check("check_error"), [f.what for f in report.by_check("check_error")]


@pytest.mark.parametrize("table", sorted(TABLES))
def test_rows_shared_with_a_test_table_are_reported(table, tmp_path):
    df, y = TABLES[table]()
    train = df.sample(frac=0.8, random_state=0)
    test = pd.concat([df.drop(train.index), train.head(len(train) // 10)])
    train.to_csv(tmp_path / "train.csv", index=False)
    test.to_csv(tmp_path / "test.csv", index=False)
    report = audit(tmp_path / "train.csv", target=y, test=tmp_path / "test.csv")
    assert report.by_check("contamination")[0].severity == "blocking"
