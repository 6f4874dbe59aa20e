"""Rendering a monitoring report: JSON-safe dict, a terminal summary (rich) and a self-contained HTML page.

The HTML embeds its plots as base64 PNG (matplotlib, Agg backend) and its style inline: one file, no
external URL, readable offline or as a CI artifact.
"""

from __future__ import annotations

import base64
import html
import io
import math
from datetime import datetime

STATUS_COLOUR = {"ok": "#2e7d32", "warn": "#ef6c00", "drift": "#c62828"}
RICH_STYLE = {"ok": "green", "warn": "yellow", "drift": "bold red"}


def to_jsonable(obj):
    """Plain JSON types only: numpy scalars and arrays, datetimes, NaN (as null)."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, datetime):
        return obj.isoformat()
    if hasattr(obj, "tolist"):
        return to_jsonable(obj.tolist())
    if hasattr(obj, "item"):
        return to_jsonable(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _num(v, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _pct(v) -> str:
    return "-" if v is None else f"{v:.1%}"


def feature_rows(report: dict, limit: int | None = None) -> list[list[str]]:
    rows = []
    for r in report["features"][:limit]:
        effect = r.get("ks") if r["kind"] != "categorical" else r.get("js")
        rows.append([r["column"], r["kind"], r["status"], _num(r.get("psi")), ("KS " if r["kind"] != "categorical" else "JS ") + _num(effect),
                     _num(r.get("p_value"), 4), f"{_pct(r.get('missing_reference'))} -> {_pct(r.get('missing_current'))}",
                     "; ".join(r.get("reasons", []))])
    return rows


FEATURE_COLUMNS = ["feature", "kind", "status", "PSI", "KS / JS", "p-value", "missing", "why"]


def print_summary(report: dict, console) -> None:
    from rich.table import Table

    w = report["window"]
    console.print(f"[bold]{report['model']}@{report['version']}[/] ({report.get('family')}, {report.get('task')}): "
                  f"{w.get('rows')} rows from {w.get('source')}" + (f" since {w['since'][:16]}" if w.get("since") else ""))
    tab = Table(title="Feature drift (worst first)", title_justify="left", header_style="bold")
    for c in FEATURE_COLUMNS[:-1]:
        tab.add_column(c)
    for row in feature_rows(report, limit=30):
        style = RICH_STYLE.get(row[2], "")
        tab.add_row(*row[:2], f"[{style}]{row[2]}[/]" if style else row[2], *row[3:-1])
    console.print(tab)
    for r in report["features"]:
        if r["status"] != "ok":
            console.print(f"  [{RICH_STYLE[r['status']]}]{r['column']}[/]: {'; '.join(r['reasons'])}", highlight=False)
    if len(report["features"]) > 30:
        console.print(f"... and {len(report['features']) - 30} more features (see the JSON or HTML report).")
    for r in report["predictions"]:
        console.print(f"Prediction [bold]{r['column']}[/]: [{RICH_STYLE[r['status']]}]{r['status']}[/] "
                      f"(PSI {_num(r.get('psi'))}{', ' + '; '.join(r['reasons']) if r.get('reasons') else ''})", highlight=False)
    dom = report.get("domain")
    if dom and "auc" in dom:
        console.print(f"Domain classifier: [{RICH_STYLE[dom['status']]}]{dom['status']}[/], cross-validated AUC {dom['auc']:.3f} "
                      f"(0.5 = indistinguishable); gives it away: {', '.join(dom['top_features']) or '-'}", highlight=False)
    elif dom:
        console.print(f"Domain classifier: skipped ({dom.get('skipped')})")
    perf = report.get("performance")
    if perf and perf.get("overall"):
        m = perf["metric"]
        console.print(f"Performance on {perf['labelled_rows']} labelled rows: {m} {_num(perf['overall'].get(m))} "
                      f"(test {_num(perf['test'].get(m))})" + (f", [{RICH_STYLE[perf['status']]}]{perf['status']}[/]" if perf.get("status") else ""),
                      highlight=False)
    s = report["summary"]
    console.print(f"Status: [{RICH_STYLE[report['status']]}]{report['status'].upper()}[/] - {len(s['drifted'])} of {s['features']} features drifted"
                  + (f" ({', '.join(s['drifted'][:8])})" if s["drifted"] else "") + (f", {len(s['warned'])} warned" if s["warned"] else "")
                  + f"; exit code {report['exit_code']}.", highlight=False)


# plots -------------------------------------------------------------------------------------------------
def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def plots(report: dict) -> dict[str, str]:
    """Base64 PNGs by name; empty when matplotlib is not installed (`pip install trainyard[report]`)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return {}
    drawn = {name: draw(plt, report) for name, draw in (("features", _feature_plot), ("distributions", _distribution_plot),
                                                        ("timeline", _timeline_plot), ("performance", _performance_plot),
                                                        ("domain", _domain_plot))}
    return {name: png for name, png in drawn.items() if png is not None}


def _feature_plot(plt, report: dict) -> str | None:
    feats = report["features"][:25]
    if not feats:
        return None
    fig, ax = plt.subplots(figsize=(8, 0.3 * len(feats) + 1))
    ax.barh([r["column"] for r in feats][::-1], [r.get("score") or 0 for r in feats][::-1],
            color=[STATUS_COLOUR.get(r["status"], "#888") for r in feats][::-1])
    ax.axvline(1.0, color="#c62828", ls="--", lw=1)
    ax.set_xlabel("drift score (1 = drift threshold)")
    ax.set_title("Feature drift")
    return _png(fig)


def _distribution_plot(plt, report: dict) -> str | None:
    shown = [r for r in report["features"] if r.get("histogram")][:6]
    if not shown:
        return None
    fig, axes = plt.subplots(len(shown), 1, figsize=(8, 2.2 * len(shown)))
    for ax, r in zip(list(getattr(axes, "flat", [axes])), shown):
        h = r["histogram"]
        x = range(len(h["labels"]))
        ax.bar([i - 0.2 for i in x], h["reference"], width=0.4, label="reference", color="#90a4ae")
        ax.bar([i + 0.2 for i in x], h["current"], width=0.4, label="current", color=STATUS_COLOUR.get(r["status"], "#555"))
        ax.set_xticks(list(x), h["labels"], rotation=30, ha="right", fontsize=7)
        ax.set_title(f"{r['column']} ({r['status']})", fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return _png(fig)


def _timeline_plot(plt, report: dict) -> str | None:
    tl = report.get("timeline")
    if not tl or not tl.get("periods"):
        return None
    periods = [p["period"] for p in tl["periods"]]
    fig, ax = plt.subplots(figsize=(8, 3.2))
    for col in [r["column"] for r in report["features"][:6]]:
        ax.plot(periods, [p["scores"].get(col, 0) for p in tl["periods"]], marker="o", label=col)
    ax.axhline(1.0, color="#c62828", ls="--", lw=1)
    ax.set_ylabel("drift score")
    ax.set_title(f"Drift over time (by {tl['by']})")
    ax.tick_params(axis="x", rotation=30, labelsize=7)
    ax.legend(fontsize=7)
    return _png(fig)


def _performance_plot(plt, report: dict) -> str | None:
    perf = report.get("performance") or {}
    if not perf.get("by_period"):
        return None
    m = perf["metric"]
    fig, ax = plt.subplots(figsize=(8, 3))
    ax.plot([p["period"] for p in perf["by_period"]], [p["metrics"].get(m) for p in perf["by_period"]], marker="o", label=m)
    if perf["test"].get(m) is not None:
        ax.axhline(perf["test"][m], color="#607d8b", ls="--", lw=1, label=f"test {m}")
    ax.set_title("Performance over time")
    ax.tick_params(axis="x", rotation=30, labelsize=7)
    ax.legend(fontsize=7)
    return _png(fig)


def _domain_plot(plt, report: dict) -> str | None:
    dom = report.get("domain") or {}
    if not dom.get("importance"):
        return None
    imp = dom["importance"][:15]
    fig, ax = plt.subplots(figsize=(8, 0.3 * len(imp) + 1))
    ax.barh([r["column"] for r in imp][::-1], [r["importance"] for r in imp][::-1], color="#5c6bc0")
    ax.set_title(f"Domain classifier: what tells new rows from training rows (AUC {dom['auc']:.3f})")
    return _png(fig)


def _table(columns: list[str], rows: list[list], status_col: int | None = None) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for row in rows:
        cells = []
        for i, v in enumerate(row):
            style = f' style="color:{STATUS_COLOUR[v]};font-weight:bold"' if i == status_col and v in STATUS_COLOUR else ""
            cells.append(f"<td{style}>{html.escape(str(v))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def to_html(report: dict) -> str:
    imgs = plots(report)
    img = lambda name: f'<img alt="{name}" src="data:image/png;base64,{imgs[name]}">' if name in imgs else ""  # noqa: E731
    s, w = report["summary"], report["window"]
    parts = [
        f"<h1>Monitoring report: {html.escape(report['model'])}@{report['version']}</h1>",
        f'<p class="status" style="background:{STATUS_COLOUR[report["status"]]}">{report["status"].upper()} (exit code {report["exit_code"]})</p>',
        f"<p>{w.get('rows')} rows from {html.escape(str(w.get('source')))}"
        + (f", since {html.escape(w['since'])}" if w.get("since") else "")
        + f"; reference: {report['reference'].get('rows')} training rows. {len(s['drifted'])} of {s['features']} features drifted, "
        + f"{len(s['warned'])} warned. Generated {html.escape(report['generated_at'][:19])} UTC.</p>",
        "<h2>Features</h2>", img("features"), _table(FEATURE_COLUMNS, feature_rows(report), status_col=2), img("distributions"),
    ]
    if report["predictions"]:
        parts += ["<h2>Predictions</h2>", _table(["output", "kind", "status", "PSI", "KS / JS", "p-value", "missing", "why"],
                                                 [[*r] for r in feature_rows({"features": report["predictions"]})], status_col=2)]
    dom = report.get("domain")
    if dom:
        parts.append("<h2>Multivariate drift (domain classifier)</h2>")
        if "auc" in dom:
            parts.append(f"<p>Cross-validated AUC <b>{dom['auc']:.3f}</b> (0.5: new rows are indistinguishable from training rows), "
                         f"p = {dom['p_value']:.2g}, status <b>{dom['status']}</b>; {dom['share_unlike_reference']:.1%} of new rows score above 0.8.</p>")
            parts.append(img("domain"))
            parts.append("<h3>Rows least like the training data</h3>")
            parts.append(_table(["row", "score", "values"], [[r.get("request_id", r["row"]), f"{r['score']:.3f}", r["values"]] for r in dom["least_typical_rows"]]))
        else:
            parts.append(f"<p>Skipped: {html.escape(str(dom.get('skipped')))}</p>")
    if report.get("timeline"):
        tl = report["timeline"]
        parts += ["<h2>Drift over time</h2>", img("timeline"),
                  _table(["period", "rows", "status", "drifted"], [[p["period"], p["rows"], p["status"], ", ".join(p["drifted"])] for p in tl["periods"]], status_col=2)]
    perf = report.get("performance")
    if perf and perf.get("overall"):
        m = perf["metric"]
        parts += ["<h2>Performance with labels</h2>",
                  f"<p>{perf['labelled_rows']} labelled rows; {m} {_num(perf['overall'].get(m))} vs {_num(perf['test'].get(m))} on the test set"
                  + (f", status <b>{perf['status']}</b>" if perf.get("status") else "") + ".</p>",
                  img("performance"),
                  _table(["metric", "now", "test"], [[k, _num(v), _num(perf["test"].get(k))] for k, v in perf["overall"].items()])]
    style = ("body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}table{border-collapse:collapse;margin:1em 0;font-size:13px}"
             "td,th{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}th{background:#f5f5f5}"
             ".status{color:#fff;display:inline-block;padding:6px 14px;border-radius:4px;font-weight:bold}img{max-width:100%;display:block;margin:1em 0}")
    title = f"trainyard monitor: {html.escape(report['model'])}@{report['version']}"
    return f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title><style>{style}</style></head><body>{''.join(parts)}</body></html>"
