"""bench.py's report: Markdown tables from its JSON-lines results.

Ranks are per (dataset, seed): the systems are ranked on that split (ties share the better rank, a failure ranks
last), and a system's mean rank is the mean over every (dataset, seed) it was run on, which is the mean over seeds
of each seed's mean rank when every seed covers the same tables. Win rates count (dataset, seed) pairs, ties as half. Time is the system's fit time and
its whole process's wall time (start-up, loading, fit, prediction) as a multiple of the budget, mean and worst;
memory is the peak resident memory of the system's process tree; CPU is its processes' user + system seconds (those it
waited for); the load average is read as each run starts; latency is the median single-row predict time.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

GREATER_IS_BETTER = {"roc_auc": True, "log_loss": False, "rmse": False}
SYSTEMS = ["trainyard", "autogluon", "flaml", "h2o", "lightgbm"]


def ranks_of(part: pd.DataFrame, systems: list[str]) -> dict[tuple, dict[str, int]]:
    """(dataset, seed) -> system -> rank on that split."""
    out = {}
    for (name, seed), g in part.groupby(["dataset", "seed"], sort=False):
        metric = g["metric"].iloc[0]
        valid = {r["system"]: r["score"] for _, r in g.iterrows() if r.get("score") is not None and not pd.isna(r.get("score"))}
        ordered = sorted(valid, key=lambda s: -valid[s] if GREATER_IS_BETTER[metric] else valid[s])
        rank = {}
        for s in ordered:
            same = [t for t in ordered if np.isclose(valid[t], valid[s], rtol=0, atol=1e-9)]
            rank[s] = min(ordered.index(t) for t in same) + 1
        for s in systems:
            rank.setdefault(s, len(systems))
        out[(name, seed)] = rank
    return out


def _row(label: str, cells: list[str]) -> str:
    return f"| {label} | " + " | ".join(cells) + " |"


def _scores(part: pd.DataFrame, systems: list[str], ranks: dict) -> list[str]:
    """Per dataset: each system's score, mean over seeds (its mean rank there in brackets)."""
    lines = [_row("dataset (metric, seeds)", systems), "|---" * (len(systems) + 1) + "|"]
    for name, g in part.groupby("dataset", sort=False):
        seeds = sorted(g["seed"].unique())
        cells = []
        for s in systems:
            vals = g[(g["system"] == s)]["score"].dropna() if "score" in g else pd.Series(dtype=float)
            mean_rank = np.mean([ranks[(name, seed)][s] for seed in seeds])
            cells.append(f"{vals.mean():.4f} ({mean_rank:.1f})" if len(vals) else f"failed ({mean_rank:.1f})")
        lines.append(_row(f"{name} ({g['metric'].iloc[0]}, {len(seeds)})", cells))
    return lines


def _summary(part: pd.DataFrame, systems: list[str], ranks: dict, budget: float) -> list[str]:
    """Mean rank (and the spread of the per-seed mean ranks), time / budget, memory and latency per system."""
    lines = []
    by_seed = {}
    for (_, seed), rank in ranks.items():
        by_seed.setdefault(seed, []).append(rank)
    mean_rank = {s: np.mean([r[s] for r in ranks.values()]) for s in systems}
    seed_means = {s: [np.mean([r[s] for r in rs]) for rs in by_seed.values()] for s in systems}
    lines.append(_row(f"**mean rank** ({len(ranks)} splits)", [f"**{mean_rank[s]:.2f}**" for s in systems]))
    if len(by_seed) > 1:
        lines.append(_row("per-seed mean rank, min-max", [f"{min(seed_means[s]):.2f}-{max(seed_means[s]):.2f}" for s in systems]))
    stats = [("fit time / budget, mean", "fit_seconds", "mean", 1 / budget, "{:.2f}x"),
             ("fit time / budget, worst", "fit_seconds", "max", 1 / budget, "{:.2f}x"),
             ("process wall time / budget, mean", "wall_seconds", "mean", 1 / budget, "{:.2f}x"),
             ("process wall time / budget, worst", "wall_seconds", "max", 1 / budget, "{:.2f}x"),
             ("process CPU seconds / budget, mean", "cpu_seconds", "mean", 1 / budget, "{:.2f}x"),
             ("load average (1 min) at start, max", "load_before", "max", 1, "{:.1f}"),
             ("peak memory MB, median", "peak_mb", "median", 1, "{:.0f}"),
             ("peak memory MB, max", "peak_mb", "max", 1, "{:.0f}"),
             ("single-row predict ms, median", "single_row_ms", "median", 1, "{:.2f}"),
             ("single-row predict ms, worst", "single_row_ms", "max", 1, "{:.2f}"),
             ("single-row ms via `trainyard serve`'s fast path", "served_row_ms", "median", 1, "{:.3f}")]
    for label, col, how, scale, fmt in stats:
        if col not in part:
            continue
        agg = getattr(part.groupby("system")[col], how)() * scale
        lines.append(_row(label, [fmt.format(agg[s]) if s in agg and not pd.isna(agg[s]) else "-" for s in systems]))
    return lines


def _wins(systems: list[str], ranks: dict) -> list[str]:
    others = [s for s in systems if s != "trainyard"]
    if "trainyard" not in systems or not others:
        return []
    lines = ["\nWin rate of trainyard against each system ((dataset, seed) splits where it scores better; ties count half):\n",
             _row("vs", others), "|---" * (len(others) + 1) + "|"]
    cells = []
    for other in others:
        wins = [1.0 if r["trainyard"] < r[other] else 0.5 if r["trainyard"] == r[other] else 0.0 for r in ranks.values()]
        cells.append(f"{100 * np.mean(wins):.0f}% ({len(wins)})")
    lines.append(_row("trainyard", cells))
    return lines


def report(rows: list[dict], budgets: list[float]) -> str:
    """Markdown: per budget, scores and ranks per dataset, mean rank, win rates, time / budget, memory, latency."""
    if not rows:
        return "no results"
    df = pd.DataFrame(rows)
    df["seed"] = df["seed"].fillna(0).astype(int) if "seed" in df else 0
    lines = []
    for budget in budgets:
        part = df[df["budget"] == budget].copy()
        if part.empty:
            continue
        systems = [s for s in SYSTEMS if s in set(part["system"])]
        ranks = ranks_of(part, systems)
        lines.append(f"\n### Budget {budget:g} s: {part['dataset'].nunique()} tables, seeds {sorted(int(x) for x in part['seed'].unique())}\n")
        lines += _scores(part, systems, ranks) + _summary(part, systems, ranks, budget) + _wins(systems, ranks)
        errors = part[part["error"].notna()] if "error" in part else part.iloc[0:0]
        for _, r in errors.iterrows():
            lines.append(f"\n- {r['system']} on {r['dataset']} (seed {r['seed']}) failed: {str(r['error']).strip().splitlines()[-1][:200]}")
    return "\n".join(lines)
