"""gSDE (generalised state-dependent exploration) for continuous actions: the distribution it trains on, the noise
matrix held for `sde_sample_freq` steps, sampling from a saved policy, and PPO with it learning Pendulum-v1."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("gymnasium")
torch = pytest.importorskip("torch")


def test_gsde_log_prob_and_entropy_are_those_of_its_state_dependent_gaussian():
    from torch.distributions import Normal

    from trainyard.rl.nets import ActorCritic

    torch.manual_seed(0)
    net = ActorCritic(3, 2, False, (16, 16), "tanh", log_std_init=-1.0, sde=True)
    assert net.log_std.shape == (16, 2)  # one log-std per (feature, action): a noise matrix's scale
    obs = torch.randn(32, 3)
    noise = net.sample_noise(32)
    action, logp, _ = net.sample(obs, noise)
    mean, _, features = net(obs)
    assert torch.allclose(action - mean, torch.bmm(features.unsqueeze(1), noise).squeeze(1), atol=1e-6)  # features @ matrix
    sigma = torch.sqrt(features.detach() ** 2 @ torch.exp(net.log_std) ** 2 + 1e-6)
    expected = Normal(mean, sigma)
    assert torch.allclose(logp, expected.log_prob(action).sum(-1), atol=1e-5)
    logp2, entropy, _ = net.evaluate(obs, action)
    assert torch.allclose(logp2, logp, atol=1e-6) and torch.allclose(entropy, expected.entropy().sum(-1), atol=1e-5)
    assert len(torch.unique(sigma[:, 0])) == 32  # the spread depends on the state
    logp2.sum().backward()
    assert net.log_std.grad is not None and net.log_std.grad.abs().sum() > 0


def _agent(tmp_path, **hparams):
    from trainyard.rl.config import RLSettings
    from trainyard.rl.plan import RLPlan

    # keep_best=False: the saved policy is the agent's last network, which the tests compare it with
    plan = RLPlan(RLSettings(env="Pendulum-v1", timesteps=4096, keep_best=False, hparams={"n_envs": 2, "n_steps": 10, **hparams}),
                  tmp_path / "ck")
    return plan, plan.prepare()


@pytest.mark.parametrize("freq, groups", [(4, [4, 4, 4, 4, 4]), (-1, [10, 10])])
def test_the_noise_matrix_is_held_for_sde_sample_freq_steps_across_rollouts(tmp_path, freq, groups):
    plan, agent = _agent(tmp_path, sde_sample_freq=freq)
    assert plan.config.use_sde  # Pendulum's default, as the RL Zoo's
    drawn = [agent._exploration_noise(t % 10).clone() for t in range(20)]  # two rollouts of 10 steps
    assert drawn[0].shape == (2, 64, 1) and not torch.equal(drawn[0][0], drawn[0][1])  # one matrix per environment
    runs, start = [], 0
    for i in range(1, 21):
        if i == 20 or not torch.equal(drawn[i], drawn[start]):
            runs.append(i - start)
            start = i
    assert runs == groups


def test_without_gsde_pendulum_uses_independent_noise_and_discrete_refuses_it(tmp_path):
    from trainyard.errors import ConfigError
    from trainyard.rl.config import RLSettings
    from trainyard.rl.plan import RLPlan

    plan, agent = _agent(tmp_path, use_sde=False)
    assert agent.sde_noise is None and agent.net.log_std.shape == (1,)
    with pytest.raises(ConfigError, match="needs continuous actions"):
        RLPlan(RLSettings(env="CartPole-v1", hparams={"use_sde": True}), tmp_path / "pole")


def test_a_saved_gsde_policy_samples_from_the_distribution_it_trained_with(tmp_path, torch_one_thread):
    plan, agent = _agent(tmp_path, log_std_init=-3.0)
    plan.fit()
    policy = plan.policy()
    assert policy.net_spec["sde"] and policy.log_std.shape == (64, 1)
    obs = np.tile(np.array([[0.3, -0.9, 1.5]], dtype=np.float32), (4000, 1))
    samples = policy.act(obs, deterministic=False, generator=torch.Generator().manual_seed(3))
    again = policy.act(obs, deterministic=False, generator=torch.Generator().manual_seed(3))
    assert np.array_equal(samples, again)  # seeded
    with torch.no_grad():
        mean, _, features = agent.net(torch.from_numpy(obs[:1]))
        sigma = float(agent.net._log_sigma(features).exp())
    assert float(policy.act(obs[:1])[0, 0]) == pytest.approx(float(mean[0, 0]), abs=1e-5)  # deterministic: the mean
    assert samples.std() == pytest.approx(sigma, rel=0.06) and samples.mean() == pytest.approx(float(mean[0, 0]), abs=4 * sigma / 60)


@pytest.mark.slow
def test_ppo_with_gsde_learns_pendulum_with_its_defaults(tmp_path, torch_one_thread):
    from trainyard.rl.config import RLSettings
    from trainyard.rl.plan import RLPlan

    plan = RLPlan(RLSettings(env="Pendulum-v1", timesteps=50_000, seed=1), tmp_path / "ck")
    plan.fit()
    report = plan.evaluate()
    # the RL Zoo's SB3 PPO reaches about -170 at this budget; a policy that never swings up scores below -700
    assert report["policy"]["mean"] > -300 and report["random"]["mean"] < -1000, report
