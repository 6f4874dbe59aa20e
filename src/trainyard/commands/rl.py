"""Reinforcement learning in the CLI: `trainyard train --task rl`, and what `resume`, `evaluate`, `predict` run for it.

`trainyard train --task rl --env CartPole-v1 --algo ppo --timesteps 100k --name pole` hands its options here
(see commands/train.py). While training, a progress bar shows the steps, the mean return of the last 100
training episodes with a sparkline, and the latest loss; rollbacks print a line.
"""

from __future__ import annotations

from pathlib import Path

from trainyard.commands._common import console, fmt, print_json, table
from trainyard.errors import DataError
from trainyard.registry.workspace import Workspace
from trainyard.rl.serving import is_policy as names_policy


def show_rl_result(result, as_json: bool) -> None:
    details = result.details
    if as_json:
        print_json({"run_id": result.run_id, "name": result.name, "version": result.version, "metrics": result.metrics,
                    "evaluation": {k: v for k, v in result.evaluation.items() if k not in ("returns", "gif")}, "steps": result.steps,
                    "seconds": result.seconds, "cpu_seconds": details["cpu_seconds"], "timed_out": result.timed_out,
                    "resumed_from": details["resumed_from"], "gif": details["gif"], "kept_best": details.get("kept_best")})
        return
    console.print(evaluation_table(result.evaluation, f"{result.name}@{result.version}"))
    if result.evaluation.get("across_seeds"):
        console.print(seeds_table(result.evaluation["across_seeds"]))
    stopped = " (stopped by the time limit)" if result.timed_out else ""
    resumed = f", resumed from step {details['resumed_from']:,}" if details["resumed_from"] is not None else ""
    console.print(f"Registered [bold]{result.name}@{result.version}[/], run {result.run_id}: {result.steps:,} steps in "
                  f"{result.seconds:.1f}s{resumed}{stopped}. Mean return {fmt(result.metrics['mean_return'], 2)}.", highlight=False)
    kept = details.get("kept_best")
    if kept and kept["summary"]:
        console.print(f"{kept['summary']} (--last-policy keeps the last).", highlight=False)
    if details["gif"]:
        console.print(f"One episode: {details['gif']}", highlight=False)


def evaluation_table(report: dict, title: str):
    p, r = report["policy"], report.get("random")
    rows = [["policy", p["mean"], f"[{fmt(p['ci_low'], 2)}, {fmt(p['ci_high'], 2)}]", p["std"], p["episodes"]]]
    if r:
        rows.append(["random policy", r["mean"], f"[{fmt(r['ci_low'], 2)}, {fmt(r['ci_high'], 2)}]", r["std"], r["episodes"]])
    seeds = report.get("seeds") or ["?", "?"]
    return table(f"{title}: episodic return on held-out seeds {seeds[0]}..{seeds[1]}", ["", "mean return", "95% CI", "std", "episodes"], rows)


def seeds_table(spread: dict):
    """Each training seed's validation and held-out returns; the title gives the spread and which was registered."""
    rows = [[("* " if r["seed"] == spread["best_seed"] else "") + str(r["seed"]), f"{r['steps']:,}", r["validation_return"], r["mean_return"]]
            for r in spread["per_seed"]]
    title = (f"{spread['seeds']} training seeds: held-out mean return {fmt(spread['mean'], 2)} (sd {fmt(spread['sd'], 2)} across seeds, "
             f"{fmt(spread['min'], 2)} to {fmt(spread['max'], 2)}); * registered (best on validation)")
    return table(title, ["seed", "steps", "validation return", "held-out return"], rows)


def is_policy(ref: str) -> bool:
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
