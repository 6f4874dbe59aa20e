"""Exact resume: a run killed with SIGKILL and resumed with `trainyard resume` ends bit-identical to one never
interrupted (same seed): networks, optimizer, generators, normalisers, replay buffer. A NaN loss rolls back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("gymnasium")

HERE = Path(__file__).parent
ENV = {"PYTHONPATH": os.pathsep.join([str(HERE.parents[1] / "src"), str(HERE)]), "OMP_NUM_THREADS": "1"}

CASES = {
    # PPO with observation and reward normalisation on (their running statistics must come back too)
    "ppo": (["--env", "CartPole-v1", "--algo", "ppo", "--timesteps", "12000", "--checkpoint-every", "2000", "--hparam",
             "normalize_obs=true", "--hparam", "normalize_reward=true", "--hparam", "n_steps=64"], 4000),
    # DQN: replay buffer, target network, epsilon schedule
    "dqn": (["--env", "CartPole-v1", "--algo", "dqn", "--timesteps", "5000", "--checkpoint-every", "1000", "--hparam",
             "gradient_steps=32", "--hparam", "learning_starts=500"], 2000),
    # continuous actions with gSDE: rollouts of 30 steps and a matrix redrawn every 4, so the matrix in use at a
    # checkpoint is part way through its 4 steps (the matrix and its age must come back)
    "ppo-gsde": (["--env", "Pendulum-v1", "--algo", "ppo", "--timesteps", "6100", "--checkpoint-every", "1000", "--hparam",
                  "n_steps=30", "--hparam", "batch_size=60", "--hparam", "sde_sample_freq=4", "--hparam", "normalize_obs=true"], 2000),
    # two training seeds: killed while training the second (the first's checkpoints done, the second's part way)
    "ppo-seeds": (["--env", "CartPole-v1", "--algo", "ppo", "--seeds", "2", "--timesteps", "4000", "--checkpoint-every", "1000",
                   "--hparam", "n_steps=64"], 2000),
}
FOLDER = {"ppo-seeds": "seed-1/"}  # where the checkpoints watched and compared are, under the run's checkpoints/


def _final_checkpoint(home: Path, folder: str = "") -> tuple[bytes, dict]:
    step = sorted((home / "runs").glob(f"*/checkpoints/{folder}step-*"))[-1]
    state = json.loads((step / "state.json").read_text())
    return (step / "tensors.safetensors").read_bytes(), state


@pytest.mark.slow
@pytest.mark.parametrize("algo", sorted(CASES))
def test_kill_9_and_resume_end_bit_identical(cli, workspace, tmp_path, algo):
    args, kill_after = CASES[algo]
    train = ["train", "--task", "rl", *args, "--name", "k", "--json"]
    reference = cli(*train, env={**ENV, "TRAINYARD_HOME": str(tmp_path / "ref")})
    assert reference.code == 0, reference.output

    proc = subprocess.Popen([sys.executable, "-m", "trainyard", *train], env={**os.environ, **ENV, "TRAINYARD_HOME": str(workspace)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)
    deadline = time.monotonic() + 240
    folder = FOLDER.get(algo, "")
    while not [p for p in workspace.glob(f"runs/*/checkpoints/{folder}step-*") if int(p.name[5:]) >= kill_after]:
        assert proc.poll() is None and time.monotonic() < deadline, "the training process ended before it could be killed"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    from trainyard.registry.workspace import Workspace

    store = Workspace.resolve(workspace).store
    run_id = store.list_runs()[0]["id"]
    assert store.get_run(run_id)["model_version"] is None  # killed before the end
    resumed = cli("resume", run_id, "--json", env=ENV)
    assert resumed.code == 0, resumed.output
    out, ref = json.loads(resumed.stdout), json.loads(reference.stdout)
    assert out["run_id"] == run_id and out["resumed_from"] >= kill_after and out["steps"] == ref["steps"]

    tensors_a, state_a = _final_checkpoint(tmp_path / "ref", folder)
    tensors_b, state_b = _final_checkpoint(workspace, folder)
    assert tensors_a == tensors_b  # networks, optimizer moments, torch generator: byte for byte
    assert state_a == state_b  # numpy generator, normalisers, episode starts, counters
    step = sorted(workspace.glob(f"runs/*/checkpoints/{folder}step-*"))[-1]
    ref_step = sorted((tmp_path / "ref").glob(f"runs/*/checkpoints/{folder}step-*"))[-1]
    arrays = {"dqn": "buffer_obs.npy", "ppo-gsde": "sde_noise.npy"}.get(algo)
    if arrays:
        assert (step / arrays).read_bytes() == (ref_step / arrays).read_bytes()
    if algo == "ppo-seeds":  # the first seed, finished before the kill, ends the same too; so do the spread and the choice
        assert _final_checkpoint(tmp_path / "ref", "seed-0/") == _final_checkpoint(workspace, "seed-0/")
        assert out["evaluation"]["across_seeds"] == ref["evaluation"]["across_seeds"]
    if algo == "ppo-gsde":
        assert state_a["sde_age"] == 2  # 51 rollouts of 30 steps end half way through a matrix's 4 steps
    assert out["metrics"]["mean_return"] == ref["metrics"]["mean_return"]
    events = store.events(run_id)
    assert any(e["kind"] == "resumed" and e["data"]["exact"] for e in events)


def test_a_nan_loss_rolls_back_and_lowers_the_learning_rate(workspace, torch_one_thread):
    import toyenvs

    from trainyard.rl.config import RLSettings
    from trainyard.runs.dispatch import train_policy
    from trainyard.registry.workspace import Workspace

    toyenvs.STEPS["n"] = 0  # the NaN reward comes at this process's 300th environment step
    # keep_best=False: validation episodes would step the toy environment too, and take the NaN instead of training
    result = train_policy(RLSettings(env="toyenvs:NanOnce", algo="ppo", timesteps=2048, checkpoint_every=128, keep_best=False,
                                     hparams={"n_envs": 2, "n_steps": 64, "batch_size": 64}, name="nan"))
    events = Workspace.resolve(workspace).store.events(result.run_id)
    rollbacks = [e for e in events if e["kind"] == "rollback"]
    assert len(rollbacks) == 1 and rollbacks[0]["data"]["lr_scale"] == 0.5, events
    assert "loss nan" in rollbacks[0]["message"] and "lowered the learning rate to 0.5x" in rollbacks[0]["message"]
    assert result.steps >= 2048 and result.version == 1  # it carried on past the bad step and registered
