"""Environments: registered ids and a user's module:Class; wrong ids, unsupported spaces and environments that
raise stop the run with exit code 2 and the reason; settings parse as documented."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("gymnasium")

HERE = str(Path(__file__).parent)
ENV = {"PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[2] / "src"), HERE]), "OMP_NUM_THREADS": "1"}


@pytest.mark.parametrize("args, says", [
    (["--env", "CartPol-v1"], "CartPole-v1"),  # a typo: the suggestion names the right id
    (["--env", "toyenvs:DictObservations"], "only Box observations"),
    (["--env", "toyenvs:Exploding"], "the simulator crashed"),
    (["--env", "toyenvs:Missing"], "has no 'Missing'"),
    (["--env", "Pendulum-v1", "--algo", "dqn"], "DQN needs discrete actions"),
    (["--env", "CartPole-v1", "--algo", "sac"], "not a reinforcement-learning algorithm"),
    (["--env", "CartPole-v1", "--hparam", "learning_rat=0.1"], "not a PPO hyperparameter"),
    (["--env", "CartPole-v1", "--timesteps", "lots"], "not a number of timesteps"),
])
def test_user_mistakes_exit_2_with_the_reason(cli_inproc, args, says):
    budget = [] if "--timesteps" in args else ["--timesteps", "100"]
    res = cli_inproc("train", "--task", "rl", *args, *budget)
    assert res.code == 2, res.output
    assert says in res.output and "Traceback" not in res.output


def test_a_users_environment_class_trains_registers_and_evaluates(cli, workspace):
    res = cli("train", "--task", "rl", "--env", "toyenvs:Corridor", "--algo", "ppo", "--timesteps", "6k", "--name", "walker",
              "--hparam", "n_envs=4", "--hparam", "n_steps=64", "--hparam", "batch_size=64", "--hparam", "lr=3e-3", "--json", env=ENV)
    assert res.code == 0, res.output
    import json

    out = json.loads(res.stdout)
    # walking right from at most 4 cells away takes <= 8 steps: return >= 1 - 0.07; a random walk does far worse
    assert out["metrics"]["mean_return"] > 0.9 > out["metrics"]["random_mean_return"]
    assert out["evaluation"]["policy"]["episodes"] == 100 and out["gif"] is None  # no rgb_array rendering: no GIF


def test_probe_reads_spaces_and_bounds():
    from trainyard.rl.envs import EnvInfo

    pole = EnvInfo.probe("CartPole-v1", "ppo")
    assert pole.action_kind == "discrete" and pole.n_actions == 2 and pole.obs_shape == (4,) and pole.max_episode_steps == 500
    assert pole.obs_low[1] is None and pole.obs_high[0] == pytest.approx(4.8)  # unbounded -> None (JSON has no infinity)
    pend = EnvInfo.probe("Pendulum-v1", "ppo")
    assert pend.action_kind == "box" and pend.action_low == [-2.0] and pend.action_high == [2.0]


def test_settings_parse():
    from trainyard.rl.config import parse_hparams, parse_steps

    assert parse_steps("100k") == 100_000 and parse_steps("1.5M") == 1_500_000 and parse_steps("1e5") == 100_000
    assert parse_hparams(["lr=1e-3", "hidden=128,128", "double=false", "clip_value=none"]) == {
        "lr": 1e-3, "hidden": (128, 128), "double": False, "clip_value": None}


def test_continuous_actions_stay_in_bounds_with_clip_and_tanh(tmp_path):
    from trainyard.rl.config import RLSettings
    from trainyard.rl.plan import RLPlan

    for squash in ("clip", "tanh"):
        plan = RLPlan(RLSettings(env="Pendulum-v1", timesteps=512, hparams={"n_envs": 2, "n_steps": 128, "squash": squash, "log_std_init": 1.0}),
                      tmp_path / squash)
        plan.fit()
        policy = plan.policy()
        obs = np.random.default_rng(0).uniform(-1, 1, (256, 3)).astype(np.float32)
        sampled = policy.act(obs, deterministic=False)
        assert sampled.shape == (256, 1) and sampled.min() >= -2.0 and sampled.max() <= 2.0
        assert len(np.unique(sampled)) > 10  # samples, not one value
        assert not plan.agent.net.discrete
