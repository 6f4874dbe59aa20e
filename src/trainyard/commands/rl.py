"""Reinforcement learning in the CLI: `trainyard train --task rl`, and what `resume`, `evaluate`, `predict` run for it.

`trainyard train --task rl --env CartPole-v1 --algo ppo --timesteps 100k --name pole` hands its options here
(see commands/train.py). While training, a progress bar shows the steps, the mean return of the last 100
training episodes with a sparkline, and the latest loss; rollbacks print a line.
"""

from __future__ import annotations

from pathlib import Path

from trainyard.commands._common import console, fmt, print_json, process_started, table
from trainyard.commands.deep import DeepLive, sparkline


def train_rl(*, env: str | None, algo: str | None, timesteps: str | None, time_limit: float | None, seed: int, name: str | None,
             hparams: list[str] | None, lr: float | None, batch_size: int | None, checkpoint_every: int | None,
             max_trials: int | None = None, as_json: bool = False) -> None:
    """What `trainyard train --task rl` runs (--lr and --batch-size are the hyperparameters of those names)."""
    from trainyard.errors import ConfigError
    from trainyard.rl.config import RLSettings, parse_hparams, parse_steps
    from trainyard.rl.run import train_policy

    if not env:
        raise ConfigError("--task rl needs an environment.", "pass --env CartPole-v1 (a Gymnasium id) or --env mypkg.envs:MyEnv.")
    overrides = {**({"lr": lr} if lr is not None else {}), **({"batch_size": batch_size} if batch_size is not None else {}), **parse_hparams(hparams)}
    settings = RLSettings(env=env, algo=(algo or "ppo").lower(), timesteps=parse_steps(timesteps), time_limit=time_limit, seed=seed,
                          name=name, hparams=overrides, checkpoint_every=checkpoint_every, tune_trials=max_trials)
    with RLLive(enabled=not as_json) as live:
        result = train_policy(settings, progress=live.update, clock_started=process_started())
    show_rl_result(result, as_json)


def resume_rl(run_id: str, *, as_json: bool = False) -> None:
    """What `trainyard resume` runs for a reinforcement-learning run."""
    from trainyard.rl.run import resume_policy

    with RLLive(enabled=not as_json) as live:
        result = resume_policy(run_id, progress=live.update, clock_started=process_started())
    show_rl_result(result, as_json)


def show_rl_result(result, as_json: bool) -> None:
    if as_json:
        print_json({"run_id": result.run_id, "name": result.name, "version": result.version, "metrics": result.metrics,
                    "evaluation": {k: v for k, v in result.evaluation.items() if k not in ("returns", "gif")}, "steps": result.steps,
                    "seconds": result.seconds, "cpu_seconds": result.cpu_seconds, "timed_out": result.timed_out,
                    "resumed_from": result.resumed_from, "gif": result.gif})
        return
    console.print(evaluation_table(result.evaluation, f"{result.name}@{result.version}"))
    stopped = " (stopped by the time limit)" if result.timed_out else ""
    resumed = f", resumed from step {result.resumed_from:,}" if result.resumed_from is not None else ""
    console.print(f"Registered [bold]{result.name}@{result.version}[/], run {result.run_id}: {result.steps:,} steps in "
                  f"{result.seconds:.1f}s{resumed}{stopped}. Mean return {fmt(result.metrics['mean_return'], 2)}.", highlight=False)
    if result.gif:
        console.print(f"One episode: {result.gif}", highlight=False)


def evaluation_table(report: dict, title: str):
    p, r = report["policy"], report.get("random")
    rows = [["policy", p["mean"], f"[{fmt(p['ci_low'], 2)}, {fmt(p['ci_high'], 2)}]", p["std"], p["episodes"]]]
    if r:
        rows.append(["random policy", r["mean"], f"[{fmt(r['ci_low'], 2)}, {fmt(r['ci_high'], 2)}]", r["std"], r["episodes"]])
    seeds = report.get("seeds") or ["?", "?"]
    return table(f"{title}: episodic return on held-out seeds {seeds[0]}..{seeds[1]}", ["", "mean return", "95% CI", "std", "episodes"], rows)


def is_policy(ref: str) -> bool:
    from trainyard.rl.serving import is_policy as names_policy
    from trainyard.workspace import Workspace

    return names_policy(Workspace.resolve(), ref)


def evaluate_rl(ref: str, episodes: int | None, *, as_json: bool = False) -> None:
    """What `trainyard evaluate NAME --episodes N` runs for a policy."""
    from trainyard.rl.run import evaluate_version

    with console.status(f"running {episodes or 100} held-out episodes"):
        report = evaluate_version(ref, episodes or 100)
    if as_json:
        print_json({k: v for k, v in report.items() if k != "returns"})
        return
    console.print(evaluation_table(report, f"{report['name']}@{report['version']} ({report['algo']} on {report['env']})"))


def predict_rl(ref: str, data: Path, output: Path | None) -> None:
    """What `trainyard predict NAME obs.csv` runs for a policy: one row per observation (its values in order), the
    deterministic action added."""
    import numpy as np

    from trainyard.api import load_with_meta
    from trainyard.data.load import load_table
    from trainyard.errors import DataError
    from trainyard.rl.spaces import check_observations

    policy, meta = load_with_meta(ref)
    frame = load_table(data)
    flat = {**meta["spaces"], "obs_shape": [int(np.prod(meta["spaces"]["obs_shape"]))]}  # one column per value
    try:
        obs = check_observations(frame.to_numpy(), flat, batch=True)
    except DataError as exc:
        raise DataError(f"{data}: {exc.problem}", exc.fix) from exc
    actions = policy.act(obs)
    out = frame.copy()
    if actions.ndim == 1:
        out["action"] = actions
    else:
        for j in range(actions.shape[1]):
            out[f"action_{j}"] = actions[:, j]
    if output is None:
        console.print(out.head(50).to_string())
        return
    suffix = output.suffix.lower()
    if suffix == ".parquet":
        out.to_parquet(output, index=False)
    elif suffix == ".jsonl":
        out.to_json(output, orient="records", lines=True)
    else:
        out.to_csv(output, index=False)
    console.print(f"Wrote {len(out):,} actions to {output}.")


class RLLive(DeepLive):
    """Steps of the environment, the training episodes' mean return with a sparkline, the latest loss."""

    def __init__(self, enabled: bool):
        super().__init__(enabled)
        self.curve: list[float] = []

    def update(self, kind: str, info: dict) -> None:
        if not self.enabled:
            return
        if kind == "run":
            console.print(f"Run [bold]{info['run_id']}[/]: {info['algo'].upper()} on {info['env']}, {info['timesteps']:,} steps "
                          f"(defaults: {info['defaults']})", highlight=False)
        elif kind == "step":
            m = info["metrics"]
            if "episode_return" in m:
                self.curve.append(m["episode_return"])
            loss = m.get("loss", m.get("value_loss"))
            ret = f"return {m['episode_return']:.1f} {sparkline(self.curve)}" if "episode_return" in m else "no episode finished yet"
            self.progress.update(self.task, completed=info["step"], total=info["total"],
                                 description=f"{ret}" + (f" loss {loss:.3g}" if loss is not None else ""))
        else:
            super().update(kind, info)
