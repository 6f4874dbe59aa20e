"""Severities that follow the planted problem (issue 16 item 13): label noise rises with the flips and not with the
outcome's own chance, extreme values in a mostly-zero column, identifiers of tables with copied rows, and a leak
that the label's own noise keeps under the absolute cut. benchmarks/audit/calibrate.py runs the same on real tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.datasets import load_digits

from trainyard.data.audit import audit
from trainyard.data.audit.noise import noise_rate


def partly_chance(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    """An outcome the columns explain only in part (like Adult's income): a confident core on both sides and a wide
    uncertain middle, so a model disagrees with ~10% of the clean labels."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    logit = 2.5 * x[:, 0] + 1.0 * x[:, 1]
    y = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "yes", "no")
    return pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "y": y})


def flip(df: pd.DataFrame, target: str, share: float, seed: int = 1) -> pd.DataFrame:
    df = df.copy()
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(df), int(share * len(df)), replace=False)
    classes = np.array(sorted(df[target].unique()))
    df.loc[df.index[rows], target] = [rng.choice(classes[classes != v]) for v in df[target].to_numpy()[rows]]
    return df


def noise(df: pd.DataFrame, target: str):
    return audit(df, target=target, checks=["label_noise"]).by_check("label_noise")[0]


def test_label_noise_severity_rises_with_flips_not_with_the_outcomes_own_chance():
    clean = partly_chance()
    found = [noise(clean, "y")] + [noise(flip(clean, "y", s), "y") for s in (0.04, 0.08)]
    assert found[0].data["share"] > 0.04  # the model disagrees with many clean labels: the outcome is partly chance ...
    assert found[0].severity == "info" and found[0].data["noise_rate"] < 0.02  # ... which the anchor rows do not show
    assert [f.severity for f in found[1:]] == ["warning", "warning"]
    rates = [f.data["noise_rate"] for f in found]
    assert rates[0] < rates[1] < rates[2] and 0.02 < rates[1] < 0.08 and 0.05 < rates[2] < 0.13


def test_label_noise_on_digits_five_percent_flips_is_a_warning_and_clean_is_info():
    digits = load_digits(as_frame=True).frame
    assert noise(digits, "target").severity == "info"
    flipped = noise(flip(digits, "target", 0.05), "target")
    assert flipped.severity == "warning" and 0.02 < flipped.data["noise_rate"] < 0.1


def test_noise_rate_leaves_out_a_class_without_a_confident_core():
    rng = np.random.default_rng(0)
    n = 4000
    codes = (rng.random(n) < 0.3).astype(int)
    p1 = np.where(codes == 1, rng.uniform(0.5, 0.8, n), rng.uniform(0.0, 0.5, n))  # class 1 never surer than 0.8
    p1[codes == 0] = np.minimum(p1[codes == 0], 0.02)  # class 0 has a sure core
    p1[:200] = 0.79
    codes[:200] = 0  # the rows surest of class 1 are often class 0: no core, not flips
    est = noise_rate(codes, np.column_stack([1 - p1, p1]))
    assert est["classes"] == [0] and est["rate"] < 0.01
    assert noise_rate(np.zeros(100, int) + (np.arange(100) % 2), np.full((100, 2), 0.5)) is None  # nobody is sure


def mostly_zero(n: int = 4000, seed: int = 0) -> pd.DataFrame:
    """A column that is 0 on 95% of rows (Adult's capital_loss) beside a learnable outcome."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    loss = np.where(rng.random(n) < 0.05, rng.normal(1900, 300, n).round(), 0.0)
    y = np.where(x + rng.normal(0, 0.5, n) > 0.7, "high", "low")
    return pd.DataFrame({"x": x, "loss": loss, "y": y})


def test_poisoning_extreme_values_in_a_mostly_zero_column():
    df = mostly_zero()
    assert not audit(df, target="y", checks=["poisoning"]).by_check("poisoning")
    rows = np.random.default_rng(1).choice(len(df), 30, replace=False)
    df.loc[rows, "loss"] = 250_000 + np.arange(30) * 100.0
    df.loc[rows, "y"] = "high"
    report = audit(df, target="y", checks=["poisoning", "outliers"])
    assert [(f.column, f.severity, f.data["rows"]) for f in report.by_check("poisoning")] == [("loss", "warning", 30)]
    assert [f.data["extreme_rows"] for f in report.by_check("outliers") if f.column == "loss"] == [30]  # the same yardstick


def with_copies(df: pd.DataFrame, share: float = 0.04, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    copies = df.iloc[rng.choice(len(df), int(share * len(df)), replace=False)]
    return pd.concat([df, copies], ignore_index=True).sample(frac=1.0, random_state=seed).reset_index(drop=True)


def test_identifiers_of_a_table_with_copied_rows():
    df = mostly_zero(2500)
    rng = np.random.default_rng(2)
    df.insert(0, "record_id", np.arange(1, len(df) + 1))
    df.insert(1, "account_no", 10**8 + rng.choice(9 * 10**8, len(df), replace=False))
    df["visits"] = rng.poisson(40, len(df))  # an ordinary integer feature: repeats that are not copies
    copied = with_copies(df)
    assert copied["account_no"].nunique() < 0.97 * len(copied)  # not unique, because of the copies
    found = audit(copied, target="y", checks=["id_like"]).by_check("id_like")
    assert sorted(f.column for f in found) == ["account_no", "record_id"]
    assert all(f.severity == "warning" for f in found)
    spread = copied.assign(record_id=rng.integers(0, len(copied) // 2, len(copied)))  # repeats unrelated to copies
    assert "record_id" not in [f.column for f in audit(spread, target="y", checks=["id_like"]).by_check("id_like")]


def test_leakage_relative_to_the_other_columns_when_the_label_is_noisy():
    df = partly_chance(4000)
    rng = np.random.default_rng(3)
    truth = (df["y"] == "yes").astype(int).to_numpy().copy()
    wrong = rng.choice(len(df), 80, replace=False)
    truth[wrong] = 1 - truth[wrong]
    noisy = flip(df, "y", 0.05)
    noisy["flag"] = truth  # agrees with the noisy label on ~93% of rows: under the absolute cut of 0.95
    found = audit(noisy, target="y", checks=["leakage"]).by_check("leakage")
    assert [(f.column, f.severity, f.data.get("rule")) for f in found] == [("flag", "warning", "relative")]
    assert found[0].data["score"] < 0.95 and found[0].data["others_together"] < found[0].data["score"] - 0.05
    # a strong legitimate feature is not a leak: here 'a' alone is far better than 'b' or 'c', but it adds nothing a
    # model of the others could not; without the flag, nothing is reported
    assert not audit(df, target="y", checks=["leakage"]).by_check("leakage")


def test_poisoning_extremes_are_not_hidden_by_the_log_scale_they_skew():
    rng = np.random.default_rng(4)
    n = 5000
    charges = rng.uniform(18, 120, n).round(2)  # a bulk with no long tail
    y = np.where(charges / 120 + rng.normal(0, 0.3, n) > 0.9, "yes", "no")
    df = pd.DataFrame({"charges": charges, "tenure": rng.integers(0, 72, n), "y": y})
    rows = rng.choice(n, 100, replace=False)  # 2% of rows: more than a trimmed top 1% would drop
    df.loc[rows, "charges"] = 7000 + rng.uniform(0, 300, 100)  # skew > 2 from these alone
    df.loc[rows, "y"] = "yes"
    assert df["charges"].skew() > 2
    report = audit(df, target="y", checks=["poisoning", "outliers"])
    assert ("charges", "warning") in [(f.column, f.severity) for f in report.by_check("poisoning")]
    assert [f.data["extreme_rows"] for f in report.by_check("outliers") if f.column == "charges"] == [100]


def test_leakage_relative_in_regression():
    rng = np.random.default_rng(5)
    n = 3000
    x = rng.normal(size=(n, 3))
    truth = 2 * x[:, 0] + x[:, 1] + rng.normal(0, 2.5, n)  # what the columns explain only in part
    df = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "spend": truth + rng.normal(0, 0.9, n)})
    assert not audit(df, target="spend", checks=["leakage"]).by_check("leakage")
    df["billed"] = truth  # recorded with the outcome: R^2 ~0.9 alone, under the absolute cut of 0.95
    found = audit(df, target="spend", checks=["leakage"]).by_check("leakage")
    assert [(f.column, f.data.get("rule")) for f in found] == [("billed", "relative")]
    assert found[0].data["measure"] == "R^2" and found[0].data["score"] < 0.95
