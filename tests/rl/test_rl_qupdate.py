"""DQN's update with its gradients written out (trainyard.rl.qupdate) against autograd, and the NumPy replay ring.

The written-out update must be the one SB3's DQN makes with autograd: values of the taken actions, Huber loss
(smooth L1, beta 1) against the target, the gradient norm clipped, an Adam step. A wrong activation derivative,
a missing clip, a loss averaged over the wrong axis or a gradient on the untaken actions would show here.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")


def _reference_step(net, opt, obs, actions, target, max_grad_norm):
    """One update as autograd does it (SB3's DQN.train, one gradient step)."""
    current = net(obs).gather(1, actions.unsqueeze(1)).squeeze(1)
    loss = torch.nn.functional.smooth_l1_loss(current, target)
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(net.parameters(), max_grad_norm)
    opt.step()
    return current.detach()


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("max_grad_norm", [10.0, 0.05])  # 0.05: the clip binds
def test_written_out_update_equals_autograd(activation, max_grad_norm, torch_one_thread):
    from trainyard.rl.nets import QNetwork
    from trainyard.rl.qupdate import QUpdate

    torch.manual_seed(0)
    ours, ref = QNetwork(5, 3, (32, 16), activation), QNetwork(5, 3, (32, 16), activation)
    ref.load_state_dict(ours.state_dict())
    opt_ours = torch.optim.Adam(ours.parameters(), lr=1e-2, fused=True)
    opt_ref = torch.optim.Adam(ref.parameters(), lr=1e-2)
    update = QUpdate(ours, opt_ours, activation, max_grad_norm, batch_size=64)
    gen = torch.Generator().manual_seed(1)
    for _ in range(20):
        obs = torch.randn(64, 5, generator=gen)
        actions = torch.randint(0, 3, (64,), generator=gen)
        target = 3 * torch.randn(64, generator=gen)  # errors both inside and outside the Huber loss's quadratic zone
        current = torch.empty(64)
        update.step(obs, actions, target, current)
        expected = _reference_step(ref, opt_ref, obs, actions, target, max_grad_norm)
        torch.testing.assert_close(current, expected, rtol=1e-5, atol=1e-5)
    for (name, a), b in zip(ours.state_dict().items(), ref.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=name)
    assert not torch.equal(ours.state_dict()["q.0.weight"], QNetwork(5, 3, (32, 16), activation).state_dict()["q.0.weight"])


def test_replay_ring_wraps_and_samples_whole_minibatches():
    from trainyard.rl.qupdate import ReplayBuffer

    buf = ReplayBuffer(size=5, obs_dim=2)
    for step in range(4):  # 3 environments per step: the ring wraps part way through a step
        rows = np.arange(3 * step, 3 * step + 3)
        buf.add(np.stack([rows, rows], 1).astype(np.float32), np.stack([rows, rows], 1) + 0.5, rows, rows.astype(np.float32),
                (rows % 2).astype(np.float32))
    assert len(buf) == 5 and buf.full and buf.pos == 2  # 12 rows into 5 slots: rows 7..11 kept
    assert sorted(buf.data["actions"].tolist()) == [7, 8, 9, 10, 11]
    batch = buf.sample(np.random.default_rng(0), 4, 6)
    assert batch["obs"].shape == (4, 6, 2) and batch["actions"].shape == (4, 6)
    np.testing.assert_array_equal(batch["obs"][..., 0], batch["actions"])  # fields of one transition stay together
    np.testing.assert_array_equal(batch["next_obs"][..., 1], batch["actions"] + 0.5)
    np.testing.assert_array_equal(batch["terminals"], batch["actions"] % 2)
