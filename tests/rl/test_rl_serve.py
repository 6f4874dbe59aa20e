"""A registered policy in use: POST /v1/act on a real server (validation with 422), `trainyard evaluate`,
`trainyard predict`, and the artifact (hashed, no pickle, spaces saved with it)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("gymnasium")
pytest.importorskip("fastapi")


@pytest.fixture
def pole(workspace, torch_one_thread):
    from trainyard.rl.config import RLSettings
    from trainyard.runs.dispatch import train_policy

    return train_policy(RLSettings(env="CartPole-v1", algo="ppo", timesteps=4096, name="pole", eval_episodes=10))


def test_act_answers_and_rejects_malformed_observations_with_422(pole, workspace):
    import httpx
    from servehelp import running_server

    from trainyard.serve.app import ServeSettings

    with running_server(ServeSettings(refs=["pole"], workspace=str(workspace))) as (base, _app):
        ok = httpx.post(f"{base}/v1/act", json={"observation": [0.01, -0.02, 0.03, 0.04]})
        assert ok.status_code == 200, ok.text
        assert ok.json()["action"] in (0, 1) and ok.json()["model"] == "pole" and ok.json()["version"] == 1
        again = httpx.post(f"{base}/v1/act", json={"observation": [0.01, -0.02, 0.03, 0.04]})
        assert again.json()["action"] == ok.json()["action"]  # deterministic by default
        batch = httpx.post(f"{base}/v1/act", json={"observations": [[0, 0, 0, 0]] * 50, "deterministic": False, "seed": 1})
        assert batch.status_code == 200 and len(batch.json()["actions"]) == 50
        assert batch.json() == httpx.post(f"{base}/v1/act", json={"observations": [[0, 0, 0, 0]] * 50, "deterministic": False, "seed": 1}).json()
        for bad, says in [({"observation": [0.01, 0.02, 0.03]}, "shape [3]"),  # wrong shape
                          ({"observation": [[0.01, 0.02, 0.03, 0.04]]}, "shape [1, 4]"),
                          ({"observation": ["a", 0.02, 0.03, 0.04]}, "not numbers"),  # wrong dtype
                          ({"observation": [True, False, True, False]}, "not numbers"),
                          ({"observation": [9.0, 0.0, 0.0, 0.0]}, "outside the space's bounds"),  # cart position beyond 4.8
                          ({"observations": [[0, 0, 0, 0], [0, 0, 0]]}, "not a regular array"),
                          ({}, "exactly one of")]:
            res = httpx.post(f"{base}/v1/act", json=bad)
            assert res.status_code == 422 and says in res.text, (bad, res.status_code, res.text)
        listed = httpx.get(f"{base}/v1/policies").json()["policies"][0]
        assert listed["env"] == "CartPole-v1" and listed["spaces"]["obs_shape"] == [4]


def test_artifact_is_hashed_safetensors_and_json(pole, workspace):
    from trainyard.errors import ArtifactError
    from trainyard.registry.artifact import load_artifact
    from trainyard.rl.policy import RLPolicy

    folder = workspace / "artifacts" / "pole" / pole.run_id
    assert sorted(p.name for p in folder.iterdir()) == ["episode.gif", "meta.json", "policy.safetensors"]
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["kind"] == "rl-policy" and meta["spaces"]["action_kind"] == "discrete" and meta["spaces"]["n_actions"] == 2
    assert set(meta["files"]) == {"episode.gif", "policy.safetensors"}
    policy, _ = load_artifact(folder)
    assert isinstance(policy, RLPolicy)
    (folder / "policy.safetensors").write_bytes((folder / "policy.safetensors").read_bytes()[:-1] + b"\0")
    with pytest.raises(ArtifactError, match="altered"):
        load_artifact(folder)


def test_evaluate_and_predict_from_the_cli(pole, cli_inproc, tmp_path):
    res = cli_inproc("evaluate", "pole", "--episodes", "20", "--json")
    assert res.code == 0, res.output
    report = json.loads(res.stdout)
    assert report["policy"]["episodes"] == 20 == report["random"]["episodes"] and report["policy"]["ci_low"] <= report["policy"]["mean"]
    (tmp_path / "obs.csv").write_text("x,v,theta,omega\n0.0,0.0,0.1,0.5\n0.0,0.0,-0.1,-0.5\n")
    res = cli_inproc("predict", "pole", tmp_path / "obs.csv", "-o", tmp_path / "actions.csv")
    assert res.code == 0, res.output
    lines = (tmp_path / "actions.csv").read_text().splitlines()
    assert lines[0] == "x,v,theta,omega,action" and len(lines) == 3
    (tmp_path / "bad.csv").write_text("x,v,theta\n0.0,0.0,0.1\n")
    res = cli_inproc("predict", "pole", tmp_path / "bad.csv")
    assert res.code == 2 and "shape" in res.output
