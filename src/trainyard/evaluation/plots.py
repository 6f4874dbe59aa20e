"""Plots for the report, drawn from the report's own data with matplotlib (Agg) and returned as base64 PNG."""

from __future__ import annotations

import base64
import io


def _figure(width=5.5, height=3.6, ncols=1):
    """A figure of matplotlib's object API (no pyplot: no global state, no backend switch in the caller's session)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    return None, fig, fig.subplots(1, ncols) if ncols > 1 else fig.subplots()


def _png(_plt, fig) -> str:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def preload() -> None:
    """Import matplotlib's figure and Agg machinery (a few seconds on a busy machine) ahead of the first plot."""
    import matplotlib.backends.backend_agg  # noqa: F401
    import matplotlib.figure  # noqa: F401


def metrics_forest(rows: list[dict]) -> str:
    plt, fig, ax = _figure(5.5, 0.45 * len(rows) + 1.2)
    for i, r in enumerate(rows):
        lo, hi = r["ci_low"], r["ci_high"]
        ax.plot([lo, hi], [i, i], color="tab:blue", lw=2)
        ax.plot(r["value"], i, "o", color="tab:blue")
        if r.get("baseline") is not None:
            ax.plot(r["baseline"], i, "x", color="tab:red")
    ax.set_yticks(range(len(rows)), [r["metric"] for r in rows])
    ax.invert_yaxis()
    ax.set_title("Metrics with 95% intervals (o model, x baseline)")
    return _png(plt, fig)


def reliability(rel: dict) -> str:
    plt, fig, ax = _figure(4.6, 4.2)
    pts = [(m, o, c) for m, o, c in zip(rel["mean_predicted"], rel["observed"], rel["count"]) if c]
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    if pts:
        m, o, c = zip(*pts)
        ax.plot(m, o, "o-", color="tab:blue", label="model")
    ax.set_xlabel(f"predicted probability ({rel['kind']})")
    ax.set_ylabel("observed frequency")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title(f"Reliability diagram (ECE {rel['ece']:.3f})")
    ax.legend(loc="upper left")
    return _png(plt, fig)


def confusion(conf: dict) -> str:
    import numpy as np

    labels, matrix = conf["labels"], np.asarray(conf["matrix"])
    size = min(2.5 + 0.5 * len(labels), 9)
    plt, fig, ax = _figure(size, size * 0.85)
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if len(labels) <= 20:
        for i in range(len(labels)):
            for j in range(len(labels)):
                ax.text(j, i, str(matrix[i, j]), ha="center", va="center", color="white" if matrix[i, j] > matrix.max() / 2 else "black", fontsize=8)
    ax.set_title("Confusion matrix")
    return _png(plt, fig)


def residuals(res: dict) -> str:
    plt, fig, (a, b) = _figure(9, 3.6, ncols=2)
    a.scatter(res["predicted"], res["residual"], s=6, alpha=0.5)
    a.axhline(0, color="grey", ls="--")
    a.set_xlabel("predicted")
    a.set_ylabel("residual (true - predicted)")
    a.set_title("Residuals vs predicted")
    b.hist(res["residual"], bins=40, color="tab:blue")
    b.set_xlabel("residual")
    b.set_title("Residual distribution")
    return _png(plt, fig)


def bars(labels: list[str], values: list[float], title: str, xlabel: str, errors: list | None = None) -> str:
    plt, fig, ax = _figure(5.5, 0.35 * len(labels) + 1.3)
    ax.barh(range(len(labels)), values, xerr=errors, color="tab:blue", capsize=3)
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    return _png(plt, fig)


def learning_curve(lc: dict) -> str:
    import numpy as np

    plt, fig, ax = _figure()
    n = lc["train_size"]
    for key, label in (("train", "training rows"), ("validation", "held-out folds")):
        mean, std = np.asarray(lc[f"{key}_mean"]), np.asarray(lc[f"{key}_std"])
        ax.plot(n, mean, "o-", label=label)
        ax.fill_between(n, mean - std, mean + std, alpha=0.2)
    ax.set_xlabel("training rows")
    ax.set_ylabel(lc["metric"])
    ax.set_title("Learning curve")
    ax.legend()
    return _png(plt, fig)
