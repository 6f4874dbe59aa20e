"""The model card: the test-set evaluation plus what the registry knows about the model, and its limitations.

`model_card` turns a stored evaluation (the `evaluation.json` saved inside the
artifact) and the artifact's metadata into an `EvaluationReport` of kind
"model_card"; `card_dir` is where it is written in the workspace
(`reports/<name>/v<version>/`), next to the artifact but outside its hashed
folder.
"""

from __future__ import annotations

from pathlib import Path

from trainyard.errors import ArtifactError
from trainyard.evaluation.report import EVALUATION_FILE, EvaluationReport
from trainyard.registry.artifact import verify_artifact

CARD_STEM = "model_card"


def card_dir(home: Path, name: str, version: int) -> Path:
    return Path(home) / "reports" / name / f"v{version}"


def limitations(data: dict) -> list[str]:
    """Plain statements of what a reader should not conclude from this report."""
    out = _score_limitations(data) + _model_limitations(data)
    out.append("Scores describe rows like the evaluation data. Performance on other populations, other time periods, or after the data drifts is not measured here; monitor the model in use.")
    out.append("Permutation importance measures how much the model relies on a column, not whether that column causes the outcome.")
    return out


def _score_limitations(data: dict) -> list[str]:
    """What the size of the evaluation and the main metric's interval and baseline allow."""
    out = []
    rows = data.get("dataset", {}).get("rows", 0)
    main = next((r for r in data.get("metrics", []) if r["metric"] == data.get("metric")), None) or {}
    if rows < 200:
        out.append(f"Only {rows} labelled rows were evaluated: every interval is wide, and small differences mean little.")
    low, high = main.get("ci_low"), main.get("ci_high")
    if low is not None and high is not None and main["metric"] in ("accuracy", "roc_auc", "balanced_accuracy", "f1", "r2") and high - low > 0.1:
        out.append(f"The 95% interval of {main['metric']} is {high - low:.3f} wide: the true score may be far from the estimate.")
    if main.get("beats_baseline") is False:
        out.append(f"The model's {main['metric']} is not reliably better than the naive baseline ({data['baseline']['description']}).")
    if "computed from the evaluation rows" in (data.get("baseline") or {}).get("description", ""):
        out.append("The baseline was computed from the evaluation rows (the training data's was not recorded).")
    return out


def _model_limitations(data: dict) -> list[str]:
    """What overfitting, calibration, fairness, slices and missing columns say about the model."""
    out = []
    verdict = (data.get("overfitting") or {}).get("verdict")
    if verdict in ("strong overfitting", "some overfitting"):
        out.append(f"{verdict.capitalize()}: the model scores clearly better on rows it was trained on than on unseen rows.")
    rel = (data.get("calibration") or {}).get("reliability")
    if rel and rel["ece"] > 0.05:
        out.append(f"Predicted probabilities are miscalibrated (ECE {rel['ece']:.3f}); do not read them as exact chances without calibrating.")
    fairness = data.get("fairness")
    if not fairness:
        out.append("Fairness was not assessed: no sensitive columns were given.")
    else:
        out += [f"Fairness flag - {f}" for col in fairness["columns"] for f in col["flags"]]
    significant = [s["slice"] for s in (data.get("slices") or {}).get("worst", {}).get("slices", []) if s.get("significant")]
    if significant:
        out.append("The model is clearly worse on these slices: " + "; ".join(significant[:5]) + ".")
    absent = data.get("dataset", {}).get("absent_feature_columns")
    if absent:
        out.append("The evaluation data lacks some of the model's input columns (treated as missing): " + ", ".join(absent) + ".")
    if (data.get("explanations") or {}).get("contributions_note"):
        out.append("Per-prediction contributions are not available for this model family.")
    return out


def model_card(evaluation: dict, meta: dict, *, version: int | None = None, trials: list[dict] | None = None,
               run: dict | None = None, intended_use: str | None = None) -> EvaluationReport:
    data = dict(evaluation)
    name = meta.get("name", "model")
    version = version if version is not None else meta.get("version")
    data["kind"] = "model_card"
    data["title"] = f"Model card: {name}" + (f"@{version}" if version is not None else "")
    model = dict(data.get("model") or {})
    model.update(name=name, version=version, created_at=meta.get("created_at"), run_id=meta.get("run_id"))
    data["model"] = model
    task, target = meta.get("task"), meta.get("target")
    features = [c["name"] for c in meta.get("schema", {}).get("columns", []) if c.get("role") not in ("id", "ignore") and c["name"] != target]
    data["intended_use"] = intended_use or meta.get("intended_use") or (
        f"Predicts '{target}' ({task}) from {len(features)} input columns ({', '.join(features[:12])}{', ...' if len(features) > 12 else ''}) "
        f"for rows drawn like the training data. It was not validated for other populations, later periods or other uses; "
        f"decisions about people should keep a human in the loop and be checked for fairness (see below).")
    split = meta.get("split", {})
    config = meta.get("config", {})
    lines = []
    if run and run.get("data_source"):
        lines.append(f"Source: {run['data_source']} (fingerprint {meta.get('data_fingerprint', '-')}).")
    elif meta.get("data_fingerprint"):
        lines.append(f"Training data fingerprint: {meta['data_fingerprint']}.")
    if split:
        lines.append(f"Split ({split.get('strategy', '-')}, seed {split.get('seed', '-')}): {split.get('train', '-')} training, "
                     f"{split.get('val', '-')} validation, {split.get('test', '-')} test rows. The test rows were scored once, after the model was chosen.")
    data["data_summary"] = {"lines": lines, "columns": meta.get("schema", {}).get("columns", [])}
    data["audit"] = meta.get("audit")
    libs = meta.get("libraries", {})
    setup = [f"Family {meta.get('family', '-')} chosen on validation {meta.get('metric', '-')}, parameters {meta.get('params', {})}.",
             f"Preset {config.get('preset', '-')}, time limit {config.get('time_limit', '-')} s, seed {config.get('seed', '-')}, "
             f"refit on train + validation: {'yes' if config.get('refit') and not config.get('calibrate') else 'no'}.",
             "Libraries: " + ", ".join(f"{k} {v}" for k, v in libs.items()) + "."]
    if split.get("refit_all_rows"):
        setup.insert(2, "After the test, the final model was refitted on every labelled row (the test rows included) with the same "
                        "members and settings; the test scores above are those of the model before that refit.")
    data["training"] = {"lines": setup, "leaderboard": [{k: t.get(k) for k in ("number", "family", "status", "val_score", "fit_seconds")} for t in trials or []]}
    return EvaluationReport(data)


def write_model_card(ws, name: str, version: int, evaluation: dict, meta: dict, directory: Path | None = None,
                     intended_use: str | None = None) -> Path:
    """Build the card from a stored evaluation and write model_card.{html,json,md}; returns the folder."""
    store = ws.store
    run = trials = None
    if meta.get("run_id"):
        try:
            run, trials = store.get_run(meta["run_id"]), store.trials(meta["run_id"])
        except Exception:  # the run may have been pruned; the card is still useful without it
            run, trials = None, None
    card = model_card(evaluation, meta, version=version, trials=trials, run=run, intended_use=intended_use)
    directory = Path(directory) if directory else card_dir(ws.home, name, version)
    card.save(directory, CARD_STEM)
    return directory


def stored_evaluation(ws, ref: str) -> dict:
    """The test evaluation saved inside a version's artifact (its hash is checked like every artifact file)."""
    import json

    row = ws.store.resolve_model(ref)
    directory = ws.home / row["artifact_path"]
    meta = verify_artifact(directory, row["meta_sha256"])
    if EVALUATION_FILE not in meta.get("files", {}):
        raise ArtifactError(f"{row['name']}@{row['version']} was saved without a stored test evaluation (an older trainyard).",
                            f"evaluate it on labelled data instead: trainyard evaluate {row['name']}@{row['version']} --data FILE.")
    return json.loads((directory / EVALUATION_FILE).read_text())
