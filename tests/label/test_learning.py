"""The active-learning loop: queues on arrays, a round in the store, the background retrainer, the estimate."""

from __future__ import annotations

import numpy as np
import pytest
from labelhelp import tickets_csv, wine_csv, wine_truth

from trainyard.label import ledger, queues
from trainyard.label.learner import Retrainer, labels_needed, rounds, run_round
from trainyard.label.project import create_project, get_project, items_frame
from trainyard.label.settings import LabelSettings
from trainyard.registry.workspace import Workspace


def test_uncertainty_measures_rank_the_unsure_first():
    proba = np.array([[0.98, 0.01, 0.01], [0.4, 0.35, 0.25], [0.5, 0.5, 0.0]])
    assert queues.uncertainty(proba, "least-confidence").argmax() == 1
    assert queues.uncertainty(proba, "margin").argmax() == 2
    assert queues.uncertainty(proba, "entropy").argmax() == 1
    with pytest.raises(ValueError):
        queues.uncertainty(proba, "vibes")


def test_k_center_greedy_covers_the_clusters_first():
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0], [10, 0], [0, 10], [10, 10]], dtype=float)
    X = np.vstack([c + rng.normal(0, 0.1, (25, 2)) for c in centres])
    picked = queues.k_center_greedy(X, np.array([0]), 3)  # cluster 0 is labelled already
    assert sorted(set(picked // 25)) == [1, 2, 3]


def test_round_scores_the_pool_and_records_the_curve(workspace, tmp_path):
    ws = Workspace.resolve(workspace)
    create_project(ws, "wine", wine_csv(tmp_path / "wine.csv"), target="target", settings=LabelSettings(queue="uncertainty"))
    out = run_round(ws, "wine")
    assert out["labels"] == 30 and 0.6 < out["accuracy"] <= 1.0
    items = items_frame(ws.store, "wine")
    pool = items[items["given"].isna()]
    assert pool["suggestion"].notna().all() and pool["confidence"].between(0, 1).all()
    project = get_project(ws.store, "wine")
    first = ledger.claim(ws.store, project, "alice")
    # the uncertainty queue serves the least certain by margin among the pool first
    assert first["confidence"] <= pool["confidence"].median()
    truth = wine_truth()
    accuracy = np.mean(pool["suggestion"].to_numpy() == np.array(truth)[pool["position"].to_numpy()])
    assert accuracy > 0.8
    assert [r["labels"] for r in rounds(ws.store, "wine")] == [30]


def test_review_queue_finds_planted_label_errors(workspace, tmp_path):
    import pandas as pd

    ws = Workspace.resolve(workspace)
    path = wine_csv(tmp_path / "wine.csv", given=178)
    df = pd.read_csv(path)
    flip = {"a": "b", "b": "c", "c": "a"}
    planted = list(range(0, 178, 20))
    df.loc[planted, "target"] = df.loc[planted, "target"].map(flip)
    df.to_csv(path, index=False)
    create_project(ws, "wine", path, target="target", settings=LabelSettings(queue="review"))
    run_round(ws, "wine")
    project = get_project(ws.store, "wine")
    found = []
    while (item := ledger.claim(ws.store, project, "alice")) is not None:
        found.append(item["position"])
        ledger.record(ws.store, project, item["id"], wine_truth()[item["position"]], annotator="alice", queue="review",
                      item_sha256=item["content_sha256"])
    assert len(set(found) & set(planted)) >= 6 and len(found) < 40


def test_retrainer_runs_in_the_background_every_k_labels(workspace, tmp_path):
    ws = Workspace.resolve(workspace)
    path, truth = tickets_csv(tmp_path / "t.csv", n=60)
    project = create_project(ws, "t", path, text_col="body", classes=["billing", "bug", "other"],
                             settings=LabelSettings(features="tfidf", retrain_every=6, queue="random"))
    trainer = Retrainer(ws)
    assert trainer.poke("t")  # the first round: features, no model yet
    trainer.wait("t")
    for _ in range(12):
        item = ledger.claim(ws.store, project, "alice")
        ledger.record(ws.store, project, item["id"], truth[item["position"]], annotator="alice", queue="random", item_sha256=item["content_sha256"])
        trainer.poke("t")
    trainer.wait("t")
    assert not trainer.errors
    counts = [r["labels"] for r in rounds(ws.store, "t")]
    assert counts[0] == 0 and 2 <= len(counts) <= 3 and counts == sorted(counts) and counts[-1] >= 6  # a round per 6 labels at most
    trainer.poke("t", force=True)
    trainer.wait("t")
    curve = rounds(ws.store, "t")
    assert curve[-1]["labels"] == 12 and curve[-1]["accuracy"] is not None


def test_labels_needed_from_a_falling_curve():
    curve = [{"labels": n, "accuracy": 1 - 0.5 * n ** -0.5} for n in (10, 20, 40, 80)]
    needed = labels_needed(curve, 0.97)
    assert needed == pytest.approx(278 - 80, abs=2)  # 0.5 / sqrt(n) = 0.03 at n ~ 278
    assert labels_needed(curve, 0.9) == 0
    assert labels_needed(curve[:2], 0.97) is None


def test_feature_cache_is_used_only_when_its_hash_matches(workspace, tmp_path):
    from trainyard.label.features import cache_path, project_features

    ws = Workspace.resolve(workspace)
    path, _ = tickets_csv(tmp_path / "t.csv", n=30)
    create_project(ws, "t", path, text_col="body", classes=["billing", "bug", "other"], settings=LabelSettings(features="tfidf"))
    first = project_features(ws, get_project(ws.store, "t"))
    cached = cache_path(ws, get_project(ws.store, "t"))
    np.save(cached, np.zeros_like(first), allow_pickle=False)  # altered behind the store's back
    again = project_features(ws, get_project(ws.store, "t"))
    assert np.allclose(again, first) and not np.allclose(again, 0)


@pytest.mark.slow
def test_minilm_vectors_for_text_projects(workspace, tmp_path):
    from trainyard.label.features import project_features

    ws = Workspace.resolve(workspace)
    path, _ = tickets_csv(tmp_path / "t.csv", n=24)
    create_project(ws, "t", path, text_col="body", classes=["billing", "bug", "other"])  # features: auto -> MiniLM
    X = project_features(ws, get_project(ws.store, "t"))
    assert X.shape == (24, 384) and np.allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-4)
    items = items_frame(ws.store, "t", ("position", "data"))
    same_class = [i for i in range(24) if i % 3 == 0]
    other = [i for i in range(24) if i % 3 == 1]
    within = (X[same_class] @ X[same_class].T).mean()
    across = (X[same_class] @ X[other].T).mean()
    assert within > across and len(items) == 24  # texts of one class lie closer together


def test_review_queue_holds_conflicting_duplicates(workspace, tmp_path):
    ws = Workspace.resolve(workspace)
    rows = ["body,kind"] + [f"ticket about payment {i},billing" for i in range(12)] + [f"app crash number {i},bug" for i in range(12)]
    rows += ["same words here,billing", "same words here,bug"]
    (tmp_path / "d.csv").write_text("\n".join(rows) + "\n")
    create_project(ws, "d", tmp_path / "d.csv", text_col="body", target="kind", settings=LabelSettings(features="tfidf", queue="review"))
    run_round(ws, "d")
    project = get_project(ws.store, "d")
    first, second = ledger.claim(ws.store, project, "alice"), ledger.claim(ws.store, project, "bob")
    assert {first["key"], second["key"]} == {"24", "25"}  # both copies, each shown with its given label
    assert {first["given"], second["given"]} == {"billing", "bug"}


@pytest.mark.slow
def test_backbone_features_for_images(workspace, tmp_path):
    from labelhelp import image_folder

    from trainyard.label.features import project_features

    ws = Workspace.resolve(workspace)
    create_project(ws, "p", image_folder(tmp_path / "photos"), classes=["ok", "dent"], settings=LabelSettings(features="backbone"))
    X = project_features(ws, get_project(ws.store, "p"))
    assert X.shape == (12, 1280) and np.isfinite(X).all() and X.std() > 0
    with pytest.raises(Exception, match="does not apply to image items"):
        create_project(ws, "q", tmp_path / "photos", classes=["ok", "dent"], settings=LabelSettings(features="minilm"))
