"""--keep-best (the default): the greedy policy scored on validation episodes during training, the best one registered."""

from __future__ import annotations

import json

import pytest
import torch

pytest.importorskip("gymnasium")

from trainyard.errors import ConfigError  # noqa: E402
from trainyard.rl.best import BestPolicy  # noqa: E402
from trainyard.rl.config import RLSettings  # noqa: E402


def _t(x: float) -> dict:
    return {"q.0.weight": torch.full((2, 2), x)}


def test_a_policy_is_kept_when_it_scores_at_least_the_best_so_far():
    best = BestPolicy(every=100, episodes=5)
    assert best.offer(100, -300.0, _t(1)) and best.step == 100
    assert not best.offer(200, -400.0, _t(2)) and best.step == 100  # worse: the earlier one stays
    assert best.offer(300, -300.0, _t(3)) and best.step == 300  # a tie goes to the later, longer-trained one
    assert best.offer(400, -90.0, _t(4)) and best.score == -90.0
    assert not best.offer(500, -500.0, _t(5))
    assert float(best.tensors["q.0.weight"][0, 0]) == 4.0
    assert [h[0] for h in best.history] == [100, 200, 300, 400, 500] and best.history[0] == [100, -300.0, 0.0]


def test_a_near_tie_with_the_last_network_goes_to_the_last():
    best = BestPolicy(every=100, episodes=10)
    best.offer(100, -85.0, _t(1), sd=10.0)
    best.offer(200, -90.0, _t(2), sd=10.0)  # 5 below, two standard errors of the difference are 8.9: within the noise
    assert best.step == 100 and best.prefer_last() and best.chosen() == (200, -90.0)
    best.offer(300, -120.0, _t(3), sd=10.0)  # 35 below: the kept one is clearly better
    assert not best.prefer_last() and best.chosen() == (100, -85.0)
    flips = BestPolicy(every=100, episodes=10)
    flips.offer(100, 500.0, _t(1), sd=0.0)
    flips.offer(200, 480.0, _t(2), sd=20.0)  # 20 below, margin 12.6
    assert flips.chosen() == (100, 500.0)
    report = flips.report(200)
    assert (report["chosen_step"], report["best_step"], report["final_step"]) == (100, 100, 200)


def test_scorings_fall_at_the_first_iteration_end_past_each_multiple():
    best = BestPolicy(every=1000, episodes=5)
    due = []
    for step in range(256, 5000, 256):  # iterations of 256 steps
        if best.due(step):
            due.append(step)
            best.offer(step, 0.0, _t(0))
    assert due == [1024, 2048, 3072, 4096]
    assert best.scored(4096) and not best.scored(4352)


def test_the_kept_policy_goes_through_a_checkpoint_and_back():
    best = BestPolicy(every=10, episodes=3)
    best.offer(10, 5.0, _t(7))
    best.offer(20, 1.0, _t(8))
    tensors, state = best.state()
    assert set(tensors) == {"best.q.0.weight"}
    back = BestPolicy(every=10, episodes=3)
    back.load(tensors, json.loads(json.dumps(state)))
    assert (back.score, back.step, back.history) == (5.0, 10, [[10, 5.0, 0.0], [20, 1.0, 0.0]])
    assert torch.equal(back.tensors["q.0.weight"], _t(7)["q.0.weight"])
    assert not back.due(25) and back.due(30)
    fresh = BestPolicy(every=10, episodes=3)
    fresh.load({}, None)  # a checkpoint from before --keep-best: nothing kept yet
    assert fresh.tensors is None and fresh.history == []


def test_validation_settings_are_checked():
    with pytest.raises(ConfigError, match="validate_every"):
        RLSettings(env="CartPole-v1", algo="dqn", validate_episodes=0)
    with pytest.raises(ConfigError, match="validate_every"):
        RLSettings(env="CartPole-v1", algo="dqn", validate_every=0)


def _dqn(tmp_path, keep_best: bool):
    from trainyard.rl.plan import RLPlan

    settings = RLSettings(env="CartPole-v1", algo="dqn", timesteps=8000, seed=0, keep_best=keep_best, validate_episodes=5,
                          hparams={"gradient_steps": 32, "learning_starts": 500})
    plan = RLPlan(settings, tmp_path / ("kept" if keep_best else "last"))
    plan.fit()
    return plan


def test_the_registered_policy_is_the_best_scored_one_not_the_last(tmp_path, torch_one_thread):
    plan = _dqn(tmp_path, keep_best=True)
    history = plan.best.history
    # every 400 steps (a twentieth of the run; at the first end of an iteration of 256 steps past each multiple), and at the end
    assert len(history) == 20 and history[-1][0] == plan.agent.steps == 8192
    top = max(h[1] for h in history)
    best_step = [h[0] for h in history if h[1] == top][-1]
    assert plan.best.step == best_step and plan.best.score == top
    assert best_step != plan.agent.steps, history  # with this seed the last network is not the best one (deterministic)
    step, score = plan.best.chosen()
    assert not plan.best.prefer_last() and (step, score) == (best_step, top)  # and it beat the last by more than the noise
    assert plan.validation_return(5) == top  # the registered policy is the one that scored it, on the same episodes
    last = _dqn(tmp_path, keep_best=False)  # the same run with --last-policy: the same training, the last network kept
    assert last.best is None and last.validation_return(5) == history[-1][1] != top


def test_the_cli_says_which_policy_it_kept(cli, workspace):
    args = ["train", "--task", "rl", "--env", "CartPole-v1", "--algo", "dqn", "--timesteps", "3000", "--hparam", "learning_starts=500",
            "--name", "pole"]
    kept = cli(*args, "--json")
    assert kept.code == 0, kept.output
    report = json.loads(kept.stdout)["kept_best"]
    assert report["episodes"] == 10 and report["final_step"] >= 3000 == 20 * report["every"]
    assert 10 <= len(report["history"]) <= 20 and report["history"][-1][0] == report["final_step"]  # iterations of 256 steps
    assert report["best_validation_return"] == max(h[1] for h in report["history"])
    assert report["chosen_validation_return"] in (report["best_validation_return"], report["history"][-1][1])
    text = cli(*args)
    assert text.code == 0 and "validation return" in text.output and "scorings" in text.output, text.output
    last = cli(*args, "--last-policy", "--json")
    assert last.code == 0 and json.loads(last.stdout)["kept_best"] is None, last.output


def test_scoring_leaves_training_exactly_as_without_it(tmp_path, torch_one_thread):
    """PPO samples its actions from torch's generator, which building a policy to score also draws from."""
    from trainyard.rl.plan import RLPlan

    nets = []
    for keep in (True, False):
        plan = RLPlan(RLSettings(env="CartPole-v1", algo="ppo", timesteps=2048, seed=3, keep_best=keep, validate_episodes=2,
                                 hparams={"n_envs": 2, "n_steps": 64}), tmp_path / str(keep))
        plan.fit()
        nets.append({k: v.clone() for k, v in plan.agent.net.state_dict().items()})
    assert len(plan.agent.returns) > 0 and all(torch.equal(nets[0][k], nets[1][k]) for k in nets[0])
