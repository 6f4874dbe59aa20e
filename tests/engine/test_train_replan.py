"""Time-limited runs re-plan their schedule from the speed they measure: real training on a step clock.

Each step costs a fixed number of seconds on the clock the loop is given (`fit(clock=...)`), and that cost changes
after a number of steps, as on a machine that gets busier or quieter. The run must use its budget and end with the
learning rate at its floor, and a run killed mid-way must resume from the plan in its checkpoint. The step clock
makes this exact whatever else the machine does (with real sleeps, a loaded CI machine spent the whole budget
setting up); one test keeps the wall clock and real sleeps.
"""

from __future__ import annotations

import time

import pytest

torch = pytest.importorskip("torch")

from trainyard.engine.batches import TensorBatches  # noqa: E402
from trainyard.engine.checkpoint import Checkpoints  # noqa: E402
from trainyard.engine.loop import LoopConfig, fit  # noqa: E402
from trainyard.engine.schedule import Schedule  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")

LIMIT = 2.4  # seconds of training
LR, FLOOR = 0.01, 0.1


def _problem():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(240, 6, generator=g)
    y = (X[:, 0] > 0).long()
    torch.manual_seed(0)
    return TensorBatches((X, y), 8), torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))


class StepClock:
    """Seconds that pass only when a step spends them."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _sleepy_loss(first: float, then: float, after: int, clock: StepClock | None = None):
    """Cross-entropy whose call takes `first` seconds, `then` seconds from call `after` on: on `clock`, or really
    slept when there is none."""
    calls = [0]

    def loss_fn(model, batch):
        calls[0] += 1
        seconds = first if calls[0] <= after else then
        if clock is None:
            time.sleep(seconds)
        else:
            clock.now += seconds
        x, y = batch
        return torch.nn.functional.cross_entropy(model(x), y)

    loss_fn.clock = clock or time.perf_counter
    return loss_fn


def _config(max_steps: int, checkpoint_every: int | None = None) -> LoopConfig:
    return LoopConfig(epochs=10**6, max_steps=max_steps, lr=LR, min_lr_ratio=FLOOR, warmup=0.05, patience=None,
                      checkpoint_every=checkpoint_every, time_limit=LIMIT, replan=True, precision="fp32")


def _run(tmp_path, loss_fn, cfg, resume=False, stop_at=None):
    batches, model = _problem()
    lrs = {}

    def progress(kind, info):
        if kind == "step":
            lrs[info["step"]] = info["lr"]
            if info["step"] == stop_at:
                raise KeyboardInterrupt  # a crash between checkpoints
    result = fit(model, batches, loss_fn, config=cfg, checkpoint_dir=tmp_path, resume=resume, progress=progress, clock=loss_fn.clock)
    return result, lrs


def _ends_at_the_deadline(result, lrs):
    state = result.state
    assert state.finished and state.step == state.total_steps == max(lrs)
    # the cosine reached its floor at the last step (to within a step: the last re-plan may move the end by one)
    assert lrs[state.step] < 1.1 * FLOOR * LR, (state, [round(lrs[s] / LR, 3) for s in sorted(lrs)[-12:]])
    assert 0.95 * LIMIT <= state.seconds <= LIMIT, state.seconds  # the budget was used, and not overrun
    steps = sorted(lrs)[sorted(lrs).index(state.step) - 20:]  # no jump in the rate while re-planning: it only decays
    assert all(lrs[a] >= lrs[b] - 1e-12 for a, b in zip(steps, steps[1:]))


def test_a_machine_that_slows_down_gets_fewer_steps_and_ends_at_the_floor(tmp_path):
    first_plan = int(LIMIT / 0.01)  # planned at the fast speed; from step 20 on each step takes 4x as long
    result, lrs = _run(tmp_path, _sleepy_loss(0.01, 0.04, after=20, clock=StepClock()), _config(first_plan))
    assert result.state.total_steps < 0.6 * first_plan
    assert not result.state.timed_out  # the plan ended the run, not the deadline cutting it short
    _ends_at_the_deadline(result, lrs)


def test_a_machine_that_speeds_up_gets_more_steps_and_uses_the_budget(tmp_path):
    first_plan = int(LIMIT / 0.04)  # planned at the slow speed; from step 15 on each step takes a quarter of the time
    result, lrs = _run(tmp_path, _sleepy_loss(0.04, 0.01, after=15, clock=StepClock()), _config(first_plan))
    assert result.state.total_steps > 1.5 * first_plan
    _ends_at_the_deadline(result, lrs)


def test_without_replan_the_first_plan_runs_out_of_time(tmp_path):
    """The behaviour re-planning replaces: the deadline cuts the schedule before its floor (on the wall clock, really
    sleeping: a loaded machine only cuts it earlier)."""
    cfg = LoopConfig(**{**_config(int(LIMIT / 0.01)).__dict__, "replan": False})
    result, lrs = _run(tmp_path, _sleepy_loss(0.01, 0.04, after=20), cfg)
    assert result.state.timed_out and result.state.step < result.state.total_steps
    assert lrs[result.state.step] > 2 * FLOOR * LR


def test_resume_continues_from_the_checkpointed_plan(tmp_path):
    loss_fn = _sleepy_loss(0.01, 0.04, after=20, clock=StepClock())
    cfg = _config(int(LIMIT / 0.01), checkpoint_every=25)
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, loss_fn, cfg, stop_at=35)
    path = Checkpoints(tmp_path).latest()
    saved = Checkpoints.load(path, _problem()[1], "cpu")
    plan, step = saved["loop"]["total_steps"], saved["loop"]["step"]
    assert step == 25 and plan < int(LIMIT / 0.01)  # the re-planned total is in the checkpoint
    schedule = Schedule("cosine", 1, 0, min_lr_ratio=FLOOR)
    schedule.load_state_dict(saved["schedule"])
    result, lrs = _run(tmp_path, loss_fn, cfg, resume=True)
    assert abs(lrs[step + 1] - LR * schedule.factor(step)) < 1e-12  # the first resumed step follows the checkpointed schedule
    assert result.state.seconds >= saved["loop"]["seconds"] > 0  # the time before the crash counts against the budget
    _ends_at_the_deadline(result, lrs)
