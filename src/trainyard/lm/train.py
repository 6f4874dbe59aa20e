"""One driver for every language-model task: a run in the store, the engine's loop, a registered model.

    result = train_language_model("corpus/", LMSettings(task="causal-lm", size="10M", context=256))

Each task module (`pretrain`, `finetune`, `preference`) turns the data and the
settings into a `Plan`: the model with its tokenizer, the batches, the loss
and the held-out evaluation. This module runs the plan with
`trainyard.training.loop.fit` (checkpoints, exact resume, rollback, metrics to
the store), evaluates, compares samples before and after, and registers the
result. `resume_language_model(run_id)` restarts a killed run from its last
checkpoint with the settings stored in the run.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from trainyard.errors import ConfigError, NotFoundError, suggest

TASKS = {"causal-lm": "trainyard.lm.pretrain", "sft": "trainyard.lm.finetune", "preference": "trainyard.lm.preference",
         "reward": "trainyard.lm.reward"}
DEFAULT_LR = {"causal-lm": 1e-3, "sft": 3e-4, "preference": 5e-5, "reward": 1e-4}
LORA_LR = 1e-3


@dataclass(frozen=True)
class LMSettings:
    """Every setting of a language-model run (the CLI flags), declared once."""

    task: str = "causal-lm"
    name: str | None = None
    base: str | None = None  # registry ref or Hugging Face directory (required for sft and preference)
    tokenizer: str | None = None  # a tokenizer directory; default: the base's, or one trained on the corpus
    vocab_size: int = 8000
    size: str = "10M"
    arch: str = "gpt2"
    experts: int = 0
    context: int = 256
    batch_size: int = 16
    epochs: int | None = None  # default: 1, or as many as max_steps (given, or planned for a time limit) take
    max_steps: int | None = None  # with a time limit and no max_steps: planned from a measured step time, then re-planned as it goes
    time_limit: float | None = None  # seconds for the whole run (setup, training, final evaluation; a resumed run: what is left)
    lr: float | None = None  # default per task (LoRA: 1e-3)
    warmup: float = 0.05  # fraction of steps (or steps when >= 1)
    eval_every: int | None = None  # default: 10 evaluations over max_steps, else one per epoch
    eval_batches: int = 20
    checkpoint_every: int | None = 200
    lora: bool = False
    lora_r: int = 16
    lora_alpha: int | None = None  # default 2 * r
    method: str = "dpo"
    beta: float = 0.1  # DPO temperature; for rloo the weight of the KL penalty
    reward_model: str | None = None  # rloo: the reward model's ref (trained with --task reward)
    rollouts: int = 4  # rloo: completions sampled per prompt
    max_new_tokens: int = 48  # rloo: length limit of each sampled completion
    seed: int = 0
    val_fraction: float = 0.05
    separator: str | None = None
    text_field: str | None = None
    device: str = "auto"
    samples: int = 3  # generations recorded before/after training
    loop: dict = field(default_factory=dict)  # any other LoopConfig field, passed through

    def __post_init__(self):
        if self.task not in TASKS:
            raise ConfigError(f"'{self.task}' is not a language-model task.", suggest(self.task, TASKS))
        from trainyard.lm.model import ARCHS, SIZES

        if self.task == "causal-lm" and not self.base and (self.size not in SIZES or self.arch not in ARCHS):
            bad, valid = (self.size, SIZES) if self.size not in SIZES else (self.arch, ARCHS)
            raise ConfigError(f"'{bad}' is not a model {'size' if valid is SIZES else 'architecture'}.", suggest(bad, valid))
        if self.time_limit is not None and self.time_limit <= 0:
            raise ConfigError(f"--time-limit must be positive, got {self.time_limit:g}.", "give seconds or a duration: --time-limit 600, 30m, 1h.")
        if self.task != "causal-lm" and not self.base:
            raise ConfigError(f"--task {self.task} fine-tunes an existing model, but no --base was given.",
                              "pass --base lm@2 (a registry ref) or --base DIR (a Hugging Face model directory).")

    @classmethod
    def from_dict(cls, values: dict) -> "LMSettings":
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            raise ConfigError(f"Unknown language-model setting '{unknown[0]}'.", suggest(unknown[0], [f.name for f in fields(cls)]))
        return cls(**values)

    @property
    def learning_rate(self) -> float:
        return self.lr or (LORA_LR if self.lora else DEFAULT_LR[self.task])


@dataclass
class Plan:
    lm: object  # LanguageModel
    batches: object
    loss_fn: Callable
    evaluate: Callable  # model -> {"val_loss": ..., ...}
    prompts: list[str]  # for the before/after samples
    meta: dict = field(default_factory=dict)
    monitor: str = "val_loss"
    loop: dict = field(default_factory=dict)  # LoopConfig fields this task needs (the user's --loop settings still win)


@dataclass
class LMResult:
    run_id: str
    name: str
    version: int
    metrics: dict
    samples: list[dict]
    steps: int
    seconds: float
    tokens_per_second: float | None = None
    timed_out: bool = False  # stopped by the time limit (at a checkpoint) before its planned steps


def train_language_model(data, settings: LMSettings, *, workspace: str | os.PathLike | None = None,
                         progress: Callable[[str, dict], None] | None = None, run_id: str | None = None,
                         clock_started: float | None = None) -> LMResult:
    """Train, evaluate and register (see the module docstring). A time limit counts from `clock_started` (a
    `time.time()` stamp; the CLI passes its process's start) or from this call."""
    import importlib
    import time

    from trainyard.workspace import Workspace

    started = time.perf_counter() - (max(time.time() - clock_started, 0.0) if clock_started else 0.0)
    s, emit = settings, progress or (lambda kind, info: None)
    ws = Workspace.resolve(workspace)
    store = ws.store
    name = s.name or _default_name(data, s.task)
    if run_id is None:
        from trainyard.data.load import source_name

        run_id = store.create_run(name, kind="language-model", task=s.task, metric="perplexity", data_source=source_name(data),
                                  config={"lm": {**asdict(s), "name": name}})
    emit("run", {"run_id": run_id, "task": s.task, "name": name, "family": s.base or f"{s.arch} {s.size}" + (f" ({s.experts} experts)" if s.experts else ""),
                 "sizes": f"context {s.context}, batch {s.batch_size}" + (", LoRA" if s.lora else "")})
    with store.running(run_id):
        run_dir = ws.run_dir(run_id)
        plan = importlib.import_module(TASKS[s.task]).plan(data, s, ws, run_dir, emit)
        return _run(plan, s, ws, run_id, run_dir, name, data, emit, started)


def resume_language_model(run_id: str, *, workspace: str | os.PathLike | None = None, progress=None,
                          clock_started: float | None = None) -> LMResult:
    """Continue a killed or interrupted run from its last checkpoint (same settings, same data)."""
    from trainyard.workspace import Workspace

    ws = Workspace.resolve(workspace)
    run = ws.store.get_run(run_id)
    config = (run.get("config") or {}).get("lm")
    if config is None:
        raise NotFoundError(f"Run {run_id} is not a language-model run.", "see `trainyard runs`.")
    if run["status"] == "finished":
        raise ConfigError(f"Run {run_id} already finished (model version {run['model_version']}).", "start a new run instead.")
    ws.store.update_run(run_id, status="running", error=None)
    return train_language_model(run["data_source"], LMSettings.from_dict(config), workspace=ws.home, progress=progress, run_id=run_id,
                                clock_started=clock_started)


def _run(plan: Plan, s: LMSettings, ws, run_id: str, run_dir: Path, name: str, data, emit, started: float) -> LMResult:
    import math
    import time

    from trainyard.lm.artifact import register_language_model
    from trainyard.lm.generate import Sampling, generate
    from trainyard.training.loop import LoopConfig, fit
    from trainyard.training.tracking import RunLog

    store = ws.store
    greedy = Sampling(max_tokens=40, temperature=0, stop=("\n\n",))
    t0 = time.perf_counter()
    before = [generate(plan.lm.model, plan.lm.tokenizer, p, greedy).text for p in plan.prompts]
    time_left, finish = None, _FINISH_SECONDS + (time.perf_counter() - t0)  # kept back: final evaluation, samples, registration
    if s.time_limit:
        if s.max_steps is None:
            s, eval_seconds = _plan_steps(plan, s, ws.store, run_id, s.time_limit - (time.perf_counter() - started) - finish, emit)
            finish += eval_seconds
        time_left = max(s.time_limit - (time.perf_counter() - started) - finish, 1e-3)
    cfg = LoopConfig.from_dict({
        "epochs": s.epochs or (10**9 if s.max_steps else 1), "max_steps": s.max_steps, "lr": s.learning_rate, "schedule": "cosine", "warmup": s.warmup,
        "min_lr_ratio": 0.1, "eval_every": s.eval_every or (max(1, s.max_steps // 10) if s.max_steps else None), "monitor": plan.monitor, "patience": None, "restore_best": False,
        "checkpoint_every": s.checkpoint_every, "seed": s.seed, "device": s.device, "weight_decay": 0.1,
        "time_limit": time_left, **plan.loop, **s.loop})
    log = RunLog(store, run_id)
    ckpt_dir = run_dir / "checkpoints"
    resume = ckpt_dir.is_dir() and any(ckpt_dir.glob("step-*"))
    result = fit(plan.lm.model, plan.batches, plan.loss_fn, config=cfg, evaluate=plan.evaluate, checkpoint_dir=ckpt_dir,
                 resume=resume, log=log, progress=emit)
    if result.state.timed_out:
        log.event("time-limit", f"stopped by --time-limit {s.time_limit:g}s at step {result.state.step}", {"step": result.state.step})
    import torch

    plan.lm.model.eval()
    with torch.no_grad():
        metrics = {k: float(v) for k, v in plan.evaluate(plan.lm.model).items()}
    if "val_loss" in metrics and s.task in ("causal-lm", "sft"):  # DPO's, RLOO's and a reward model's losses are not language-model losses
        metrics["val_perplexity"] = math.exp(min(metrics["val_loss"], 50))
    tokens = plan.meta.get("tokens_per_step")
    tps = tokens * result.state.step / max(result.seconds, 1e-9) if tokens else None
    metrics.update({k: v for k, v in plan.meta.get("baseline", {}).items()})
    if tps:
        metrics["train_tokens_per_second"] = tps
    log.metrics(result.state.step, {k: v for k, v in metrics.items() if isinstance(v, float)})
    log.flush()
    after = [generate(plan.lm.model, plan.lm.tokenizer, p, greedy).text for p in plan.prompts]
    samples = [{"prompt": p, "before": b, "after": a} for p, b, a in zip(plan.prompts, before, after)]
    meta = {"task": s.task, "family": plan.meta.get("family", "transformer"), "settings": asdict(s), "steps": result.state.step,
            "train_seconds": result.seconds, "samples": samples, "data_source": str(data), **plan.meta.get("artifact", {})}
    emit("stage", {"message": "registering the model"})
    version = register_language_model(ws, name, run_id, plan.lm, meta, metrics=metrics, arrays=plan.meta.get("files"))
    store.update_run(run_id, status="finished", best_score=metrics.get("val_perplexity", metrics.get("val_loss")), best_family=meta["family"], model_version=version)
    return LMResult(run_id, name, version, metrics, samples, result.state.step, result.seconds, tps, result.state.timed_out)


_FINISH_SECONDS = 5.0  # kept back from a time limit for the final evaluation, samples and registration


def _plan_steps(plan: Plan, s: LMSettings, store, run_id: str, seconds: float, emit) -> tuple[LMSettings, float]:
    """A time limit without --max-steps: time a few training steps and one held-out evaluation, lay the schedule over
    the steps that fit with their evaluations, and record that number in the run with the loop's `replan` on. That is
    the first plan: the loop re-plans the rest from the speed it measures as it goes (a resumed run continues from the
    plan in its checkpoint). Returns the settings and the seconds of one evaluation."""
    import time
    from dataclasses import replace

    import torch

    from trainyard.training.runtime import Device, Precision

    emit("stage", {"message": "timing a few steps to plan the schedule for the time limit"})
    device = Device.resolve(s.device)
    precision = Precision.resolve(s.loop.get("precision", "auto"), device)  # timed as the loop will train (bf16 here: ~1.5x faster)
    model = plan.lm.model.to(device.torch)
    model.train()
    times = []
    for i, batch in enumerate(plan.batches.epoch(0, s.seed)):
        t0 = time.perf_counter()
        with precision.autocast(device):
            loss = plan.loss_fn(model, device.move(batch))
        loss.backward()
        times.append(time.perf_counter() - t0)
        if i == 3 or sum(times) > 0.05 * seconds:
            break
    model.zero_grad(set_to_none=True)
    model.eval()
    t0 = time.perf_counter()
    with torch.no_grad(), precision.autocast(device):
        plan.evaluate(model)
    evaluation = time.perf_counter() - t0
    step = sorted(times[1:] or times)[len(times[1:] or times) // 2] * 1.15  # median after a warm-up; + optimizer and logging
    budget = max(seconds - sum(times) - evaluation, 0)
    if s.eval_every:  # one evaluation every eval_every steps
        steps = int(budget / (step + evaluation / s.eval_every))
    else:  # ten evaluations over the run (the default)
        steps = int(max(budget - 10 * evaluation, 0) / step)
    settings = replace(s, max_steps=max(1, steps), loop={**s.loop, "replan": True})
    run = store.get_run(run_id)
    store.update_run(run_id, config={**(run.get("config") or {}), "lm": {**run["config"]["lm"], "max_steps": settings.max_steps,
                                                                         "loop": settings.loop}})
    return settings, evaluation


def _default_name(data, task: str) -> str:
    stem = Path(os.fspath(data)).name.split(".")[0]
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-") or "lm"
