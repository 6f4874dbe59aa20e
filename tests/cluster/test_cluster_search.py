"""AutoML trials as Ray tasks on a real two-node cluster on loopback (tests/rayhelp.py), the store on PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import SRC, make_mixed_table

pytestmark = pytest.mark.slow


@pytest.fixture
def churn_csv(tmp_path):
    path = tmp_path / "churn.csv"
    make_mixed_table(600).to_csv(path, index=False)
    return path


@pytest.fixture
def pg_workspace(workspace, postgres_url, monkeypatch):
    """The test's workspace with its store on the suite's PostgreSQL server (a fresh database per test)."""
    import sqlalchemy as sa

    name = f"ray_{os.getpid()}_{time.monotonic_ns()}"
    with sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT").connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    url = postgres_url.replace("/postgres?", f"/{name}?")
    monkeypatch.setenv("TRAINYARD_DB", url)
    return url


def trials_of(run_id: str) -> list[dict]:
    from trainyard.registry.workspace import Workspace

    return Workspace.resolve().store.trials(run_id)


def test_search_runs_across_both_nodes_and_registers(cli, churn_csv, ray_cluster, pg_workspace):
    result = cli("train", churn_csv, "--target", "churn", "--preset", "fast", "--max-trials", "8", "--cluster", ray_cluster.address,
                 "--json", env={"TRAINYARD_DB": pg_workspace})
    assert result.code == 0, result.output
    import json

    out = json.loads(result.stdout)
    assert out["version"] == 1
    trials = [t for t in trials_of(out["run_id"]) if t["family"] != "ensemble"]
    assert len(trials) == 8 and all(t["status"] == "ok" for t in trials)
    nodes = {t["extra"]["node"] for t in trials}
    assert len(nodes) == 2, nodes  # both one-CPU nodes fitted trials
    assert all(t["extra"]["cpu_s"] > 0 for t in trials)
    from trainyard.registry.workspace import Workspace

    usage = [e["message"] for e in Workspace.resolve().store.events(out["run_id"]) if e["message"].startswith("per node:")]
    assert len(usage) == 1 and all(n in usage[0] for n in nodes), usage
    from trainyard.dashboard.queries import metrics_after

    sampled = {m["key"] for m in metrics_after(Workspace.resolve().store, out["run_id"]) if m["key"].startswith("node_cpu.")}
    assert sampled == {f"node_cpu.{n}" for n in nodes}  # live CPU per node, sampled while the trials ran


def test_same_seed_same_leaderboard_and_model_as_a_local_run(workspace, ray_cluster):
    from trainyard import api

    df = make_mixed_table(500, seed=3)
    runs = {}
    for where in (None, ray_cluster.address):
        result = api.train(df, target="churn", preset="fast", max_trials=7, seed=5, cluster=where, name="eq")
        board = result.leaderboard
        runs[where] = (board[["trial", "family", "params", "val_roc_auc", "status"]].to_dict("records"), result.family,
                       np.asarray(result.model.predict_proba(df.drop(columns="churn"))))
    import ray

    assert not ray.is_initialized()  # shut down after the run
    (local_board, local_family, local_p), (ray_board, ray_family, ray_p) = runs[None], runs[ray_cluster.address]
    assert local_board == ray_board and local_family == ray_family
    assert np.array_equal(local_p, ray_p)  # the same chosen model, bit for bit


def test_a_node_killed_mid_run_still_ends_with_a_model(churn_csv, ray_cluster, pg_workspace, workspace, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(SRC), "TRAINYARD_HOME": str(workspace), "TRAINYARD_DB": pg_workspace}
    make_mixed_table(3000).to_csv(churn_csv, index=False)
    cmd = [sys.executable, "-m", "trainyard", "train", str(churn_csv), "--target", "churn", "--include", "random_forest,extra_trees",
           "--max-trials", "10", "--cluster", ray_cluster.address, "--json", "--name", "killed"]
    proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        from trainyard.registry.workspace import Workspace

        store, deadline = Workspace.resolve().store, time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:  # the search has started fitting
            runs = store.list_runs()
            if runs and trials_of(runs[0]["id"]):
                break
            time.sleep(0.5)
        ray_cluster.kill_raylet("second")  # SIGKILL, mid-run
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
        ray_cluster.start_node("second-again")  # for the tests after this one
    assert proc.returncode == 0, err[-3000:]
    import json

    result = json.loads(out)
    trials = [t for t in trials_of(result["run_id"]) if t["family"] != "ensemble"]
    assert trials and any(t["status"] == "ok" for t in trials)
    assert all(t["status"] == "ok" or t["message"] for t in trials)  # a failed one says why


def test_cluster_local_n_is_started_and_stopped(workspace):
    from trainyard import api

    result = api.train(make_mixed_table(300), target="churn", preset="fast", max_trials=3, cluster="local:2", name="local")
    import ray

    assert result.version == 1 and not ray.is_initialized()
    assert all(t["extra"].get("node") for t in trials_of(result.run_id) if t["family"] != "ensemble")


def test_a_table_run_without_cluster_never_imports_ray(tmp_path, workspace):
    code = ("import sys; from trainyard import api; from conftest import make_mixed_table; "
            "api.train(make_mixed_table(200), target='churn', preset='fast', max_trials=2, name='plain'); "
            "assert 'ray' not in sys.modules, 'ray imported'")
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{SRC.parent / 'tests'}", "TRAINYARD_HOME": str(workspace)}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_bag_folds_run_as_separate_tasks_with_the_local_leaderboard_and_model(workspace, ray_cluster):
    """A bagged trial's folds are separate Ray tasks (on both nodes), put together in fold order: the same leaderboard,
    out-of-fold scores and chosen model, bit for bit, as a local run with the same seed and trials."""
    from trainyard import api

    df = make_mixed_table(400, seed=8)
    runs = {}
    for where in (None, ray_cluster.address):
        result = api.train(df, target="churn", preset="fast", max_trials=4, bag_folds=3, bag_max_rows=10_000, seed=1, cluster=where, name="bagged",
                           include=("linear", "lightgbm"))
        board = result.leaderboard[["trial", "family", "params", "val_roc_auc", "status"]].to_dict("records")
        runs[where] = (board, result.family, np.asarray(result.model.predict_proba(df.drop(columns="churn"))), result.run_id)
    (local_board, local_family, local_p, _), (ray_board, ray_family, ray_p, ray_run) = runs[None], runs[ray_cluster.address]
    assert local_board == ray_board and local_family == ray_family
    assert np.array_equal(local_p, ray_p)
    fitted = [t for t in trials_of(ray_run) if t["family"] != "ensemble" and t["status"] == "ok"]
    assert fitted and all(len(t["extra"]["folds"]) == 3 for t in fitted)  # one task per fold
    assert len({node for t in fitted for node, _ in t["extra"]["folds"]}) == 2  # spread over both nodes


def test_a_search_through_ray_client(workspace, ray_cluster):
    """--cluster ray://HOST:PORT: the driver is a Ray Client of the head's client server (not a node of the cluster); the
    trials still run on both nodes and the model is registered."""
    from trainyard import api

    # the head starts a process per Ray Client driver: slow on a loaded 2-core CI machine (it took > 30 s there once)
    os.environ["TRAINYARD_CLUSTER_CONNECT_TIMEOUT_S"] = "180"
    try:
        result = api.train(make_mixed_table(300, seed=2), target="churn", preset="fast", max_trials=6, seed=0, name="client",
                           cluster=f"ray://127.0.0.1:{ray_cluster.client_port}")
    finally:
        os.environ.pop("TRAINYARD_CLUSTER_CONNECT_TIMEOUT_S")
    import ray

    assert result.version == 1 and not ray.is_initialized()
    trials = [t for t in trials_of(result.run_id) if t["family"] != "ensemble"]
    assert len(trials) == 6 and all(t["status"] == "ok" for t in trials)
    assert len({t["extra"]["node"] for t in trials}) == 2


def test_a_connect_given_up_on_does_not_stay_behind_in_the_process(ray_cluster):
    """A Ray Client connect that outlasts its deadline is abandoned: when it connects after all it disconnects again,
    and the next run of the same process joins the cluster as if the first had never been tried (in CI the late
    connection once left every later cluster run of that process failing)."""
    import ray

    from trainyard.cluster.address import ClusterError, parse_cluster
    from trainyard.cluster.session import Cluster

    with pytest.raises(ClusterError, match="did not answer within 0s"):
        Cluster(parse_cluster(f"ray://127.0.0.1:{ray_cluster.client_port}"), connect_timeout_s=0.01).open()
    for _ in range(2):
        with Cluster(parse_cluster(ray_cluster.address), connect_timeout_s=120) as cluster:
            assert cluster.cpus() == 2 and cluster.ray.get_runtime_context().get_node_id()  # a node of it, not a client
        assert not ray.is_initialized()
