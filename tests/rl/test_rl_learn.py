"""Learning, measured the honest way: 100 held-out episodes, a 95% interval, a random policy on the same seeds."""

from __future__ import annotations

import pytest

pytest.importorskip("gymnasium")


def _train(tmp_path, **settings):
    from trainyard.rl.config import RLSettings
    from trainyard.rl.plan import RLPlan

    plan = RLPlan(RLSettings(**settings), tmp_path / "checkpoints")
    fit = plan.fit()
    return plan, fit, plan.evaluate()


def test_ppo_solves_cartpole_with_its_defaults(tmp_path, torch_one_thread):
    plan, fit, report = _train(tmp_path, env="CartPole-v1", algo="ppo", timesteps=80_000, seed=0)
    assert plan.defaults_source == "RL Zoo (CartPole-v1)"
    assert report["policy"]["episodes"] == 100 and report["seeds"] == [1_000_000, 1_000_099]
    assert report["policy"]["mean"] >= 475, report["policy"]  # "solved"
    assert report["random"]["mean"] < 30  # the baseline on the same seeds
    assert fit.steps >= 80_000 and not fit.timed_out and fit.rollbacks == 0


def test_dqn_learns_cartpole_well_above_random(tmp_path, torch_one_thread):
    plan, fit, report = _train(tmp_path, env="CartPole-v1", algo="dqn", timesteps=15_000, seed=0, hparams={"gradient_steps": 64})
    p, r = report["policy"], report["random"]
    assert not plan.config.double and plan.config.hidden == (256, 256)  # the Zoo's plain targets and network
    assert p["mean"] > 3 * r["mean"] and p["ci_low"] > r["ci_high"], (p, r)


def test_a_time_limit_stops_training_at_a_checkpoint(tmp_path, torch_one_thread):
    import time

    from trainyard.rl.checkpoint import RLCheckpoints
    from trainyard.rl.config import RLSettings
    from trainyard.rl.plan import RLPlan

    plan = RLPlan(RLSettings(env="CartPole-v1", algo="ppo", timesteps=10_000_000), tmp_path / "ck")
    started = time.time()
    fit = plan.fit(deadline=started + 3)
    assert fit.timed_out and 0 < fit.steps < 10_000_000 and time.time() - started < 10
    assert RLCheckpoints(tmp_path / "ck").steps()[-1] == fit.steps  # the stop is a checkpoint: `resume` continues it
