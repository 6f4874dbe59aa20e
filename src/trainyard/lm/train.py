"""The language-model plan of the run driver: every language-model task, from data to a registered model.

    result = execute(LanguageModelPlan("corpus/", LMSettings(task="causal-lm", size="10M", context=256)), ws)

Each task module (`pretrain`, `finetune`, `preference`, `reward`) turns the data and the settings into a
`TaskSetup`: the model with its tokenizer, the batches, the loss and the held-out evaluation. The plan runs
it with `trainyard.engine.loop.fit` (checkpoints, exact resume, rollback, metrics to the store), evaluates,
compares samples before and after, and registers the result. A resumed run rebuilds the plan from the
settings stored in the run (`LanguageModelPlan.of_run`) and continues from its last checkpoint.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, replace
from pathlib import Path

from trainyard.cluster.address import parse_cluster, preflight
from trainyard.cluster.session import Cluster
from trainyard.data.load import source_name
from trainyard.engine.ranks import train_on_ranks
from trainyard.errors import ConfigError, NotFoundError
from trainyard.lm import finetune, preference, pretrain, reward
from trainyard.lm.artifact import register_language_model
from trainyard.lm.generate import Sampling, generate
from trainyard.lm.labels import task_metric
from trainyard.lm.memory import check_quantize, use_gradient_checkpointing
from trainyard.lm.parallel import JOBS, runs_on_ranks
from trainyard.lm.settings import LMSettings, TaskSetup
from trainyard.registry.names import safe_stem
from trainyard.registry.plan import Registered, RunContext, RunResult, RunSpec

PLANNERS = {"causal-lm": pretrain.plan, "sft": finetune.plan, "preference": preference.plan, "reward": reward.plan}


class LanguageModelPlan:
    """A language-model run (see the module docstring). A time limit counts from `started` (a perf_counter stamp)."""

    def __init__(self, data, settings: LMSettings, *, started: float | None = None):
        self.data, self.s = data, settings
        self.started = time.perf_counter() if started is None else started
        self.name = settings.name or _default_name(data, settings.task)
        self.cluster = parse_cluster(settings.cluster)
        if self.cluster is not None and not runs_on_ranks(settings):  # RLOO: it samples completions as it trains
            raise ConfigError("Data-parallel training (--cluster) is built for --task causal-lm, sft, reward and preference --method dpo, "
                              f"not --method {settings.method}.", f"run --method {settings.method} without --cluster and --workers.")
        if self.cluster is not None and settings.quantize:
            raise ConfigError(f"--quantize {settings.quantize} does not run data-parallel (--cluster): a quantized base does not travel to "
                              "the ranks.", "drop --quantize (LoRA on the full-precision base), or train on one GPU without --cluster.")
        check_quantize(settings)
        preflight(self.cluster, settings.workers)  # a bad value or an unreachable cluster is refused before the run exists

    @classmethod
    def of_run(cls, run: dict, *, started: float | None = None, workers: int | None = None) -> "LanguageModelPlan":
        """The plan of a killed or interrupted run, from the settings stored in it; a data-parallel run may continue on
        another number of `workers` (a checkpoint holds one model state, not one per rank)."""
        config = (run.get("config") or {}).get("lm")
        if config is None:
            raise NotFoundError(f"Run {run['id']} is not a language-model run.", "see `trainyard runs`.")
        if run["status"] == "finished":
            raise ConfigError(f"Run {run['id']} already finished (model version {run['model_version']}).", "start a new run instead.")
        return cls(run["data_source"], LMSettings.from_dict({**config, **({"workers": workers} if workers is not None else {})}),
                   started=started)

    def spec(self) -> RunSpec:
        return RunSpec(self.name, "language-model", self.s.task, task_metric(self.s.task, self.s.method)[0], data_source=source_name(self.data),
                       config={"lm": {**asdict(self.s), "name": self.name}})

    def prepare(self, run: RunContext) -> None:
        s = self.s
        run.emit("run", {"run_id": run.run_id, "task": s.task, "name": self.name,
                         "family": s.base or f"{s.arch} {s.size}" + (f" ({s.experts} experts)" if s.experts else ""),
                         "sizes": f"context {s.context}, batch {s.batch_size}" + (", LoRA" if s.lora else "")})
        self.plan = PLANNERS[s.task](self.data, s, run.ws, run.run_dir, run.emit)
        if s.gradient_checkpointing:
            use_gradient_checkpointing(self.plan.lm.model)

    def fit(self, run: RunContext) -> None:
        from trainyard.engine.loop import LoopConfig, fit  # PyTorch, loaded when a model trains

        plan, s = self.plan, self.s
        greedy = Sampling(max_tokens=40, temperature=0, stop=("\n\n",))
        t0 = time.perf_counter()
        self.before = [generate(plan.lm.model, plan.lm.tokenizer, p, greedy).text for p in plan.prompts]
        time_left, finish = None, _FINISH_SECONDS + (time.perf_counter() - t0)  # kept back: final evaluation, samples, registration
        if s.time_limit:
            if s.max_steps is None:
                s, eval_seconds = _plan_steps(plan, s, run.store, run.run_id, s.time_limit - (time.perf_counter() - self.started) - finish, run.emit)
                finish += eval_seconds
            time_left = max(s.time_limit - (time.perf_counter() - self.started) - finish, 1e-3)
        self.s = s
        cfg = LoopConfig.from_dict({
            "epochs": s.epochs or (10**9 if s.max_steps else 1), "max_steps": s.max_steps, "lr": s.learning_rate, "schedule": "cosine",
            "warmup": s.warmup, "min_lr_ratio": 0.1, "eval_every": s.eval_every or (max(1, s.max_steps // 10) if s.max_steps else None),
            "monitor": plan.monitor, "patience": None, "restore_best": False, "checkpoint_every": s.checkpoint_every, "seed": s.seed,
            "device": s.device, "weight_decay": 0.1, "time_limit": time_left, **plan.loop, **s.loop})
        self.log = run.log()
        self.restores_best = cfg.restore_best
        ckpt_dir = run.run_dir / "checkpoints"
        resume = ckpt_dir.is_dir() and any(ckpt_dir.glob("step-*"))
        if self.cluster is not None:
            self.fitted = self._fit_on_cluster(run, cfg, ckpt_dir, resume)
        else:
            self.fitted = fit(plan.lm.model, plan.batches, plan.loss_fn, config=cfg, evaluate=plan.evaluate, checkpoint_dir=ckpt_dir,
                              resume=resume, log=self.log, progress=run.emit)
        if self.fitted.state.timed_out:
            self.log.event("time-limit", f"stopped by --time-limit {s.time_limit:g}s at step {self.fitted.state.step}",
                           {"step": self.fitted.state.step})

    def _fit_on_cluster(self, run: RunContext, cfg, ckpt_dir: Path, resume: bool):
        """Training on `workers` data-parallel ranks (lm/parallel.py); rank 0's trained weights come back into the plan's model."""
        with Cluster(self.cluster) as cluster:
            workers = self.s.workers or cluster.cpus()
            nodes = ", ".join(n.id for n in cluster.nodes())
            run.store.add_event(run.run_id, "cluster", f"data-parallel on {workers} worker{'s' if workers != 1 else ''}; Ray nodes: {nodes}")
            weights, fitted = train_on_ranks(cluster, JOBS[self.s.task](self.plan, cfg), workers=workers, run=run, checkpoint_dir=ckpt_dir,
                                             resume=resume)
        unexpected = self.plan.lm.model.load_state_dict(weights, strict=False).unexpected_keys
        assert not unexpected, unexpected  # rank 0 trained a copy of this very model
        self.plan.lm.model.eval()
        return fitted

    def evaluate(self, run: RunContext) -> dict[str, float]:
        import torch

        plan, fitted = self.plan, self.fitted
        plan.lm.model.eval()
        last = fitted.history[-1] if fitted.history else {}
        logged: set = set()
        if last.get("step") == fitted.state.step and not self.restores_best:  # the loop scored these very weights: not twice
            metrics = {k: float(v) for k, v in last.items() if k not in ("step", "epoch")}
            logged = set(metrics)
        else:
            with torch.no_grad():
                metrics = {k: float(v) for k, v in plan.evaluate(plan.lm.model).items()}
        if "val_loss" in metrics and self.s.task in ("causal-lm", "sft"):  # DPO's, RLOO's and a reward model's losses are not LM losses
            metrics["val_perplexity"] = math.exp(min(metrics["val_loss"], 50))
        tokens = plan.meta.get("tokens_per_step")
        self.tokens_per_second = tokens * fitted.state.step / max(fitted.seconds, 1e-9) if tokens else None
        metrics.update({k: v for k, v in plan.meta.get("baseline", {}).items()})
        if self.tokens_per_second:
            metrics["train_tokens_per_second"] = self.tokens_per_second
        self.log.metrics(fitted.state.step, {k: v for k, v in metrics.items() if isinstance(v, float) and k not in logged})
        self.log.flush()
        return metrics

    def register(self, run: RunContext, metrics: dict[str, float]) -> Registered:
        plan, s, fitted = self.plan, self.s, self.fitted
        greedy = Sampling(max_tokens=40, temperature=0, stop=("\n\n",))
        after = [generate(plan.lm.model, plan.lm.tokenizer, p, greedy).text for p in plan.prompts]
        self.samples = [{"prompt": p, "before": b, "after": a} for p, b, a in zip(plan.prompts, self.before, after)]
        meta = {"task": s.task, "family": plan.meta.get("family", "transformer"), "settings": asdict(s), "steps": fitted.state.step,
                "train_seconds": fitted.seconds, "samples": self.samples, "data_source": str(self.data), **plan.meta.get("artifact", {})}
        version = register_language_model(run.ws, self.name, run.run_id, plan.lm, meta, metrics=metrics, arrays=plan.meta.get("files"))
        return Registered(version, metrics.get(task_metric(s.task, s.method)[1], metrics.get("val_loss")), meta["family"])

    def result(self, run: RunContext, registered: Registered, metrics: dict[str, float]) -> RunResult:
        state = self.fitted.state
        return RunResult(run.run_id, self.name, registered.version, "language-model", self.s.task, task_metric(self.s.task, self.s.method)[0], metrics,
                         family=registered.best_family, samples=self.samples, steps=state.step, seconds=self.fitted.seconds,
                         tokens_per_second=self.tokens_per_second, timed_out=state.timed_out)


_FINISH_SECONDS = 5.0  # kept back from a time limit for the final evaluation, samples and registration


def _plan_steps(plan: TaskSetup, s: LMSettings, store, run_id: str, seconds: float, emit) -> tuple[LMSettings, float]:
    """A time limit without --max-steps: time a few training steps and one held-out evaluation, lay the schedule over
    the steps that fit with their evaluations, and record that number in the run with the loop's `replan` on. That is
    the first plan: the loop re-plans the rest from the speed it measures as it goes (a resumed run continues from the
    plan in its checkpoint). Returns the settings and the seconds of one evaluation."""
    import torch

    from trainyard.engine.runtime import Device, Precision  # PyTorch, loaded when a model trains

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
    return safe_stem(Path(os.fspath(data)).name.split(".")[0], "lm")
