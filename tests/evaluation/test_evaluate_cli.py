"""`trainyard train` ends with the test evaluation and a model card; `evaluate` and `report` on the CLI."""

from __future__ import annotations

import json

import pytest

from conftest import make_mixed_table


def train_churn(cli, tmp_path):
    df = make_mixed_table(500, seed=1)
    df["sex"] = ["f" if i % 3 else "m" for i in range(len(df))]
    df.to_csv(tmp_path / "churn.csv", index=False)
    new = make_mixed_table(200, seed=9)
    new["sex"] = ["f" if i % 2 else "m" for i in range(len(new))]
    new.to_csv(tmp_path / "new.csv", index=False)
    res = cli("train", "churn.csv", "--target", "churn", "--preset", "fast", "--include", "linear", "--sensitive", "sex", "--name", "churn")
    assert res.code == 0, res.output
    return res


@pytest.mark.slow
def test_train_evaluate_report_end_to_end(cli, tmp_path, workspace):
    """One training (the slow part), then every check on what it stored and on the two commands."""
    trained = train_churn(cli, tmp_path)
    check_train_output_and_stored_evaluation(trained, workspace)
    check_evaluate_command(cli, tmp_path)
    check_report_command_and_tampering(cli, tmp_path, workspace)


def check_train_output_and_stored_evaluation(trained, workspace):
    out = trained.stdout
    assert "95% CI" in out and "baseline" in out and "Model card:" in out
    assert "Overfitting:" in out and "Calibration: ECE" in out
    (artifact,) = list((workspace / "artifacts" / "churn").iterdir())
    meta = json.loads((artifact / "meta.json").read_text())
    assert "evaluation.json" in meta["files"]  # hashed with the model
    evaluation = json.loads((artifact / "evaluation.json").read_text())
    assert meta["metrics"]["test"]["roc_auc"] == evaluation["metrics"][0]["value"]
    lo, hi = meta["metrics"]["intervals"]["roc_auc"]
    assert lo <= meta["metrics"]["test"]["roc_auc"] <= hi
    assert meta["evaluation"]["split_scores"]["test"] == meta["metrics"]["test"]["roc_auc"]
    assert evaluation["fairness"]["columns"][0]["column"] == "sex"
    card = workspace / "reports" / "churn" / "v1"
    assert {p.name for p in card.iterdir()} >= {"model_card.html", "model_card.json", "model_card.md"}
    from trainyard.registry.store import Store

    row = Store(f"sqlite:///{workspace / 'trainyard.db'}").resolve_model("churn@1")
    assert row["metrics"]["intervals"]["roc_auc"] == [lo, hi]


def check_evaluate_command(cli, tmp_path):
    res = cli("evaluate", "churn@1", "--data", "new.csv", "--sensitive", "sex", "--slice", "plan=monthly", "--n-boot", "200", "-o", "ev", "--json")
    assert res.code == 0, res.output
    data = json.loads(res.stdout)
    assert data["dataset"]["rows"] == 200 and data["model"]["version"] == 1
    assert "training data" in data["baseline"]["description"] or "majority" in data["baseline"]["description"]
    assert "new.csv" in data["overfitting"]["scores"]
    assert (tmp_path / "ev" / "report.html").is_file()
    res = cli("evaluate", "churn@1", "--data", "new.csv", "--sensitive", "gender")
    assert res.code == 2 and "Sensitive column 'gender' is not in the data" in res.stderr and "Traceback" not in res.output


def check_report_command_and_tampering(cli, tmp_path, workspace):
    res = cli("report", "churn@1", "-o", "card", "--intended-use", "Ranking customers for a retention call.")
    assert res.code == 0, res.output
    html = (tmp_path / "card" / "model_card.html").read_text()
    assert "Ranking customers for a retention call." in html and "Training setup" in html and "data:image/png;base64," in html
    card = json.loads((tmp_path / "card" / "model_card.json").read_text())
    assert card["kind"] == "model_card" and card["model"]["version"] == 1 and card["training"]["leaderboard"]
    (artifact,) = list((workspace / "artifacts" / "churn").iterdir())
    path = artifact / "evaluation.json"
    path.write_text(path.read_text().replace('"roc_auc"', '"roc_auc" ', 1))
    res = cli("report", "churn@1")
    assert res.code == 2 and "altered" in res.stderr
