"""What DQN collects and when: the replay rows against the environment stepped by hand, and the schedule
(exploration rate, warm-up, updates, target copies) counted in this run's environment steps.

Issue 20's DQN return gap was looked for here (benchmarks/rl/dqn_lockstep.py runs trainyard's DQN and SB3's on
the same draws); these tests pin down the behaviour that comparison found equal to SB3's, so a change to it
shows: a reset observation stored as a final one, a time-limit truncation stored as terminal, an exploration
schedule over the environment's default budget instead of the run's, a warm-up or target copy off by a step.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("gymnasium")


def _agent(tmp_path, timesteps: int, **hparams):
    from trainyard.rl.config import RLSettings
    from trainyard.rl.plan import RLPlan

    settings = RLSettings(env="toyenvs:Corridor", algo="dqn", timesteps=timesteps, seed=3, max_episode_steps=10,
                          hparams={"hidden": (16, 16), "batch_size": 8, **hparams})
    plan = RLPlan(settings, tmp_path / "checkpoints")
    return plan, plan.prepare()


def test_replay_rows_are_the_environment_stepped_by_hand(tmp_path, torch_one_thread):
    """Every row is (observation, action, the observation the step returned, reward, terminated): at an episode's
    end the final observation, not the next episode's first; a truncation by the time limit not terminal."""
    import gymnasium as gym
    from toyenvs import Corridor

    plan, agent = _agent(tmp_path, 600, learning_starts=10_000)  # warm-up throughout: random actions, no updates
    while agent.steps < 600:
        agent.iterate()
    rows = {k: v[:len(agent.buffer)] for k, v in agent.buffer.data.items()}
    assert len(rows["actions"]) == 600 and agent.updates == 0

    env = gym.wrappers.TimeLimit(Corridor(), 10)
    obs, _ = env.reset(seed=3)
    ends = {"terminated": 0, "truncated": 0}
    for i, action in enumerate(rows["actions"]):
        np.testing.assert_array_equal(rows["obs"][i], obs, err_msg=f"row {i}")
        obs, reward, terminated, truncated, _ = env.step(int(action))
        np.testing.assert_array_equal(rows["next_obs"][i], obs, err_msg=f"row {i}")
        assert rows["rewards"][i] == np.float32(reward) and rows["terminals"][i] == float(terminated), i
        if terminated or truncated:
            ends["terminated" if terminated else "truncated"] += 1
            obs, _ = env.reset()
    assert ends["terminated"] >= 3 and ends["truncated"] >= 3, ends  # both kinds of episode end were checked


def test_schedule_counts_this_runs_environment_steps(tmp_path, torch_one_thread):
    """Epsilon falls over exploration_fraction of --timesteps (not of the environment's default budget, 100k
    here); no update until more than learning_starts steps are in, then one per step collected
    (gradient_steps -1); the target copied every target_update_interval steps, the first at that step."""
    plan, agent = _agent(tmp_path, 2000, learning_starts=300, train_freq=4, gradient_steps=-1, exploration_fraction=0.5,
                         exploration_initial_eps=1.0, exploration_final_eps=0.1, target_update_interval=100)
    assert plan.timesteps == 2000 and agent.total == 2000
    copies, epsilons, updates = [], {}, {}
    update_target = agent._update_target
    agent._update_target = lambda: (copies.append(agent.steps), update_target())
    while agent.steps < 2000:
        epsilons[agent.steps] = agent.epsilon()
        agent.iterate()
        updates[agent.steps] = agent.updates
    assert epsilons[0] == 1.0 and epsilons[500] == pytest.approx(1.0 - 0.9 * 500 / 1000) and epsilons[1000] == pytest.approx(0.1)
    assert epsilons[1996] == pytest.approx(0.1)
    assert updates[300] == 0 and updates[304] == 4 and updates[2000] == 2000 - 300
    assert copies == list(range(100, 2001, 100))
