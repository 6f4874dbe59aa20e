"""The deep-learning loop: exact resume after SIGKILL, rollbacks on divergence, early stopping, schedules, checkpoints."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from trainyard.engine.batches import IndexedBatches, TensorBatches  # noqa: E402
from trainyard.engine.checkpoint import Checkpoints  # noqa: E402
from trainyard.engine.loop import DivergenceError, LoopConfig, fit  # noqa: E402
from trainyard.engine.schedule import Schedule  # noqa: E402

SRC = Path(__file__).resolve().parents[2] / "src"


pytestmark = pytest.mark.usefixtures("torch_one_thread")

# A tiny classification problem and model; dropout and a shuffled order make RNG state matter for resume.
SETUP = """
import torch, torch.nn.functional as F
from trainyard.engine.batches import TensorBatches
from trainyard.engine.loop import LoopConfig, fit

def problem(seed=0, n=240):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 6, generator=g)
    y = (X[:, 0] + 0.5 * X[:, 1] * X[:, 2] > 0).long()
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(6, 32), torch.nn.ReLU(), torch.nn.Dropout(0.2), torch.nn.Linear(32, 2))
    return X, y, model

def loss_fn(model, batch):
    x, y = batch
    return F.cross_entropy(model(x), y)

def evaluate_on(X, y):
    def evaluate(model):
        out = model(X)
        return {"val_loss": F.cross_entropy(out, y).item(), "val_accuracy": (out.argmax(1) == y).float().mean().item()}
    return evaluate
"""


def _setup():
    namespace: dict = {}
    exec(SETUP, namespace)
    return namespace


def test_uninterrupted_runs_are_deterministic(tmp_path):
    ns = _setup()
    weights = []
    for name in ("a", "b"):
        X, y, model = ns["problem"]()
        cfg = LoopConfig(epochs=3, lr=0.01, seed=3, checkpoint_every=5, patience=None)
        fit(model, TensorBatches((X, y), 16), ns["loss_fn"], config=cfg, evaluate=ns["evaluate_on"](X, y), checkpoint_dir=tmp_path / name)
        weights.append([p.detach().clone() for p in model.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*weights))


KILL_SCRIPT = SETUP + """
import os, signal, sys
from pathlib import Path
from safetensors.torch import save_model
ckpt, kill_at, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
X, y, model = problem()
cfg = LoopConfig(epochs=4, lr=0.02, seed=7, grad_accum=2, checkpoint_every=3, keep_last=2, schedule="cosine", warmup=0.1,
                 eval_every=5, monitor="val_accuracy", patience=None, restore_best=False)
def progress(kind, info):
    if kind == "step" and info["step"] == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
result = fit(model, TensorBatches((X, y), 8), loss_fn, config=cfg, evaluate=evaluate_on(X[:60], y[:60]),
             checkpoint_dir=ckpt, resume=True, progress=progress)
save_model(model, out)
print("steps", result.state.step)
"""


@pytest.mark.slow  # four fresh Python processes importing torch
def test_sigkill_mid_epoch_twice_then_resume_is_bit_identical(tmp_path):
    """Killed at step 7, resumed and killed again at step 16 (15 steps per epoch), then resumed to the end."""
    script = tmp_path / "job.py"
    script.write_text(KILL_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}

    def run(ckpt, kill, out):
        return subprocess.run([sys.executable, str(script), str(ckpt), str(kill), str(out)], env=env, capture_output=True, text=True, timeout=120)

    straight = run(tmp_path / "straight", -1, tmp_path / "straight.safetensors")
    assert straight.returncode == 0, straight.stderr
    for kill_at in (7, 16):
        killed = run(tmp_path / "crash", kill_at, tmp_path / "unused.safetensors")
        assert killed.returncode == -signal.SIGKILL
        assert max(Checkpoints(tmp_path / "crash").steps()) < kill_at  # it stopped between checkpoints, work was lost
    assert not (tmp_path / "unused.safetensors").exists()
    resumed = run(tmp_path / "crash", -1, tmp_path / "resumed.safetensors")
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.split() == straight.stdout.split()
    assert (tmp_path / "resumed.safetensors").read_bytes() == (tmp_path / "straight.safetensors").read_bytes()


class _Log:
    def __init__(self):
        self.events, self.rows = [], []

    def metrics(self, step, values):
        self.rows.append((step, values))

    def event(self, kind, message, data=None):
        self.events.append((kind, message, data))

    def flush(self):
        pass


def test_planted_nan_batch_rolls_back_skips_it_and_finishes(tmp_path):
    ns = _setup()
    X, y, model = ns["problem"]()
    X = X.clone()
    X[100] = float("nan")  # one poisoned row: whichever batch holds it gives a NaN loss
    log = _Log()
    cfg = LoopConfig(epochs=2, lr=0.01, checkpoint_every=4, patience=None, max_rollbacks=3)
    result = fit(model, TensorBatches((X, y), 16), ns["loss_fn"], config=cfg, evaluate=ns["evaluate_on"](X[:99], y[:99]),
                 checkpoint_dir=tmp_path, log=log)
    rollbacks = [e for e in log.events if e[0] == "rollback"]
    assert len(rollbacks) == 2  # the poisoned batch once per epoch, each skipped afterwards
    assert "non-finite loss" in rollbacks[0][1]
    assert result.state.lr_scale == pytest.approx(0.25)
    assert len(result.state.skip) == 2 and {e for e, _ in result.state.skip} == {0, 1}
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert result.state.step == 2 * 15 - 2  # every batch but the two poisoned ones trained once
    assert result.history[-1]["val_accuracy"] > 0.6


def test_absurd_learning_rate_stops_with_a_clear_error(tmp_path):
    ns = _setup()
    X, y, model = ns["problem"]()
    log = _Log()
    cfg = LoopConfig(epochs=3, lr=1e12, optimizer="sgd", clip_norm=None, patience=None, max_rollbacks=2, lr_backoff=0.1)
    with pytest.raises(DivergenceError) as info:
        fit(model, TensorBatches((X, y), 16), ns["loss_fn"], config=cfg, evaluate=ns["evaluate_on"](X, y), checkpoint_dir=tmp_path, log=log)
    assert "diverged 3 times" in info.value.problem and "--lr" in info.value.fix
    kinds = [e[0] for e in log.events]
    assert kinds == ["rollback", "rollback", "diverged"]


def test_loss_spike_triggers_rollback(tmp_path):
    ns = _setup()
    X, y, model = ns["problem"]()
    y_spiky = y.clone()
    X = X.clone()
    X[200:216] *= 1e4  # one batch (in order, no shuffle) of huge inputs: finite but enormous loss
    log = _Log()
    batches = TensorBatches((X, y_spiky), 16, shuffle=False)
    cfg = LoopConfig(epochs=1, lr=0.01, patience=None, spike_factor=10.0)
    result = fit(model, batches, ns["loss_fn"], config=cfg, checkpoint_dir=tmp_path, log=log)
    assert [e[0] for e in log.events] == ["rollback"]
    assert "loss spike" in log.events[0][1]
    assert result.state.skip == [[0, 12]]


def test_early_stopping_and_best_checkpoint(tmp_path):
    ns = _setup()
    X, y, model = ns["problem"]()
    scores = iter([0.5, 0.4, 0.45, 0.46, 0.47, 0.3, 0.2])

    def evaluate(model):
        return {"val_loss": next(scores)}

    cfg = LoopConfig(epochs=50, lr=0.01, patience=3, checkpoint_every=None, keep_last=1)
    result = fit(model, TensorBatches((X, y), 60), ns["loss_fn"], config=cfg, evaluate=evaluate, checkpoint_dir=tmp_path)
    assert result.state.stopped_early and result.state.epoch == 5
    assert result.state.best_step == 8 and result.state.best_score == 0.4
    ckpts = Checkpoints(tmp_path)
    assert ckpts.best_info()["step"] == 8 and set(ckpts.steps()) == {8, 20}  # the best and the last
    best = {k: v.clone() for k, v in model.state_dict().items()}
    fresh = ns["problem"]()[2]
    Checkpoints.load(ckpts.path(8), fresh)
    assert all(torch.equal(best[k], v) for k, v in fresh.state_dict().items())  # restore_best put the best weights back


def test_schedules():
    cos = Schedule("cosine", 100, warmup=10, min_lr_ratio=0.1)
    assert cos.factor(0) == pytest.approx(1 / 11) and cos.factor(10) == pytest.approx(1.0) and cos.factor(100) == pytest.approx(0.1)
    step = Schedule("step", 100, step_size=30, gamma=0.5)
    assert [step.factor(s) for s in (0, 29, 30, 65)] == [1.0, 1.0, 0.5, 0.25]
    plateau = Schedule("plateau", 100, plateau_patience=2, plateau_factor=0.1)
    for improved in (True, False, False):
        plateau.on_eval(improved)
    assert plateau.factor(50) == pytest.approx(0.1)
    with pytest.raises(Exception, match="not a learning-rate schedule"):
        Schedule("cosin", 10)


def test_grad_accumulation_matches_large_batch(tmp_path):
    ns = _setup()
    outs = []
    for bs, accum, name in ((32, 1, "big"), (8, 4, "accum")):
        X, y, model = ns["problem"](n=128)
        model[2].p = 0.0  # no dropout: the two must agree up to float rounding
        cfg = LoopConfig(epochs=2, lr=0.05, optimizer="sgd", grad_accum=accum, patience=None, clip_norm=None,
                         precision="fp32")  # bf16 rounding would differ between the two batchings
        fit(model, TensorBatches((X, y), bs, shuffle=False), ns["loss_fn"], config=cfg, checkpoint_dir=tmp_path / name)
        outs.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert torch.allclose(outs[0], outs[1], atol=1e-5)


def test_indexed_batches_bucket_and_resume_position():
    lengths = torch.randint(1, 100, (103,)).numpy()
    batches = IndexedBatches(103, 10, lambda idx, gen: idx, lengths=lengths, bucket_batches=5)
    full = list(batches.epoch(2, seed=1))
    assert len(full) == len(batches) == 11
    assert sorted(int(i) for b in full for i in b) == list(range(103))
    assert [list(b) for b in batches.epoch(2, seed=1, start=4)] == [list(b) for b in full[4:]]
    spread = sum(lengths[b].max() - lengths[b].min() for b in full) / len(full)
    assert spread < 40  # bucketing groups similar lengths (random batches would spread ~85)


def test_bf16_autocast_trains_with_fp32_weights(tmp_path):
    from trainyard.engine.runtime import Device, Precision, native_bf16

    cpu = Device("cpu")
    with Precision.resolve("bf16", cpu).autocast(cpu):
        assert (torch.ones(4, 4) @ torch.ones(4, 4)).dtype == torch.bfloat16
    assert Precision.resolve("auto", cpu).name == ("bf16" if native_bf16(cpu) else "fp32")
    ns = _setup()
    X, y, model = ns["problem"](n=480)
    cfg = LoopConfig(epochs=8, lr=0.02, seed=1, patience=None, precision="bf16")
    result = fit(model, TensorBatches((X, y), 32), ns["loss_fn"], config=cfg, evaluate=ns["evaluate_on"](X, y), checkpoint_dir=tmp_path)
    assert all(p.dtype == torch.float32 for p in model.parameters())  # autocast computes in bf16, keeps fp32 weights
    assert result.state.finished and result.state.rollbacks == 0
    assert (model(X).argmax(1) == y).float().mean().item() > 0.8


def test_bf16_on_cpu_keeps_attention_in_fp32():
    """bf16 autocast on a CPU runs scaled_dot_product_attention in fp32 (faster there, and more exact) and returns
    bf16 as autocast would; a model trained under it gets the same loss as in fp32 up to bf16 rounding."""
    import torch.nn.functional as F

    from trainyard.engine.runtime import Device, Precision

    cpu, bf16 = Device("cpu"), Precision("bf16")
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 16, 8, generator=g, requires_grad=True) for _ in range(3))
    with bf16.autocast(cpu):
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        product = q @ k.transpose(-1, -2)
    plain = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert out.dtype == torch.bfloat16 and product.dtype == torch.bfloat16  # the matrix products stay bf16
    assert torch.equal(out, plain.to(torch.bfloat16))  # the attention itself was computed in fp32
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not torch.equal(F.scaled_dot_product_attention(q, k, v, is_causal=True), out)  # autocast alone: bf16 attention
    out.float().sum().backward()
    assert q.grad is not None and q.grad.dtype == torch.float32 and torch.isfinite(q.grad).all()

    from trainyard.lm.model import build_model

    model = build_model("tiny", vocab_size=300, context=32)
    x = torch.randint(0, 300, (4, 33), generator=g)

    def loss():
        return F.cross_entropy(model(input_ids=x[:, :-1], use_cache=False).logits.flatten(0, 1).float(), x[:, 1:].flatten())

    with bf16.autocast(cpu):
        low = loss()
    assert low.item() == pytest.approx(loss().item(), rel=1e-2)
