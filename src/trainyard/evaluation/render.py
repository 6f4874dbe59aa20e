"""Render a report's data as Markdown or as one self-contained HTML page.

Both come from the same list of blocks (heading, paragraph, table, list,
image), so the two formats always say the same thing; only HTML carries the
plots, embedded as base64 PNG (no external files or URLs: it opens offline).
"""

from __future__ import annotations

import html
import json
import math

from trainyard.evaluation import plots

H, P, TABLE, LIST, IMG = "h", "p", "table", "list", "img"


def num(v, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.{digits}g}" if abs(v) < 1e5 else f"{v:.4e}"
    return str(v)


def ci(lo, hi) -> str:
    return f"{num(lo)} to {num(hi)}" if lo is not None and hi is not None else "-"


def blocks(data: dict, with_plots: bool) -> list[tuple]:
    out: list[tuple] = [(H, 1, data.get("title", "Evaluation"))]
    if data.get("kind") == "model_card":
        out += _card_blocks(data)
    out += _metric_blocks(data, with_plots)
    for section in (_overfit_blocks, _calibration_blocks, _error_blocks, _explain_blocks, _fairness_blocks, _slice_blocks):
        out += section(data, with_plots)
    out += [(H, 2, "Limitations"), (LIST, data.get("limitations") or ["none found"])]
    s = data.get("settings", {})
    out.append((P, f"Intervals: {s.get('interval', 'bootstrap')}, {s.get('n_boot')} resamples, {int(100 * s.get('confidence', 0.95))}% level, seed {s.get('seed')}. Generated {data.get('created_at', '')} by trainyard."))
    return out


def _card_blocks(d: dict) -> list[tuple]:
    out = [(H, 2, "Intended use"), (P, d.get("intended_use", ""))]
    m = d.get("model", {})
    out += [(H, 2, "Model"), (TABLE, ["field", "value"], [[k, num(v) if not isinstance(v, list) else ", ".join(map(str, v))]
                                                         for k, v in m.items() if k not in ("features",) and v is not None])]
    data = d.get("data_summary", {})
    out += [(H, 2, "Data")]
    out += [(P, line) for line in data.get("lines", [])]
    if data.get("columns"):
        out.append((TABLE, ["column", "role", "type", "missing", "distinct", "note"],
                    [[c["name"], c["role"], c.get("dtype", ""), f"{100 * (c.get('missing_rate') or 0):.1f}%", c.get("n_unique", ""), c.get("reason", "")] for c in data["columns"]]))
    audit = d.get("audit")
    out.append((H, 3, "Audit findings"))
    if audit is None:
        out.append((P, "No audit findings were recorded with this model."))
    else:
        out.append((LIST, _audit_lines(audit)))
    setup = d.get("training", {})
    out += [(H, 2, "Training setup")] + [(P, line) for line in setup.get("lines", [])]
    if setup.get("leaderboard"):
        out.append((TABLE, ["trial", "family", "status", "validation score", "fit seconds"],
                    [[t["number"], t["family"], t["status"], num(t.get("val_score")), num(t.get("fit_seconds"), 3)] for t in setup["leaderboard"]]))
    return out


def _audit_lines(audit) -> list[str]:
    if isinstance(audit, dict):
        findings = audit.get("findings", audit)
        summary = audit.get("summary") or {}
        if isinstance(findings, list) and summary:
            counts = ", ".join(f"{summary[k]} {k}" for k in ("blocking", "warning", "info") if k in summary)
            return [f"Audit of {summary.get('rows', '?')} rows: {counts}."] + [_one_finding(f) for f in findings]
        if isinstance(findings, list):
            return [_one_finding(f) for f in findings] or ["no problems found"]
        return [f"{k}: {json.dumps(v, default=str)[:300]}" for k, v in findings.items()] or ["no problems found"]
    if isinstance(audit, list):
        return [_one_finding(f) for f in audit] or ["no problems found"]
    return [str(audit)]


def _one_finding(f) -> str:
    if isinstance(f, dict):
        head = " ".join(str(f[k]) for k in ("severity", "check", "column") if f.get(k))
        body = f.get("what") or f.get("message") or json.dumps(f, default=str)[:300]
        if f.get("fix"):
            body += f" Fix: {f['fix']}"
        return f"{head}: {body}" if head else str(body)
    return str(f)


def _metric_blocks(d: dict, with_plots: bool) -> list[tuple]:
    rows = d.get("metrics", [])
    ds = d.get("dataset", {})
    out = [(H, 2, f"Metrics on the {ds.get('name', 'data')} ({ds.get('rows')} rows)")]
    main = next((r for r in rows if r["metric"] == d.get("metric")), rows[0] if rows else None)
    if main:
        out.append((P, f"{main['metric']} = {num(main['value'])} (95% CI {ci(main['ci_low'], main['ci_high'])}); the naive baseline "
                       f"({d['baseline']['description']}) scores {num(main.get('baseline'))}."))
    if ds.get("dropped_missing_target"):
        out.append((P, f"{ds['dropped_missing_target']} rows without a label were left out."))
    if ds.get("absent_feature_columns"):
        out.append((P, "Columns the model expects but the data lacks (treated as missing): " + ", ".join(ds["absent_feature_columns"])))
    out.append((TABLE, ["metric", "value", "95% CI", "baseline", "model - baseline (95% CI)", "better than baseline"],
                [[r["metric"] + ("" if r["greater_is_better"] else " (lower is better)"), num(r["value"]), ci(r["ci_low"], r["ci_high"]),
                  num(r.get("baseline")), ci(r.get("delta_ci_low"), r.get("delta_ci_high")), num(r.get("beats_baseline"))] for r in rows]))
    if with_plots and rows:
        out.append((IMG, plots.metrics_forest(rows), "metrics with intervals"))
    if d.get("per_class"):
        out += [(H, 3, "Per class"), (TABLE, ["class", "support", "precision (95% CI)", "recall (95% CI)", "F1 (95% CI)"],
                                      [[c["class"], c["support"]] + [f"{num(c[m])} ({ci(*c[m + '_ci'])})" for m in ("precision", "recall", "f1")] for c in d["per_class"]])]
    return out


def _overfit_blocks(d: dict, with_plots: bool) -> list[tuple]:
    o = d.get("overfitting")
    if not o:
        return []
    out = [(H, 2, "Overfitting"), (TABLE, list(o["scores"]), [[num(v) for v in o["scores"].values()]]),
           (P, f"Verdict: {o['verdict']}. {o.get('explanation', '')}")]
    out += [(P, n) for n in o.get("notes", [])]
    lc = d.get("learning_curve")
    if lc:
        out += [(H, 3, "Learning curve"), (TABLE, ["training rows", "training score", "held-out score"],
                                           [[n, num(a), num(b)] for n, a, b in zip(lc["train_size"], lc["train_mean"], lc["validation_mean"])])]
        if with_plots:
            out.append((IMG, plots.learning_curve(lc), "learning curve"))
    return out


def _calibration_blocks(d: dict, with_plots: bool) -> list[tuple]:
    c = d.get("calibration")
    if not c:
        return []
    rel = c["reliability"]
    out = [(H, 2, "Calibration"), (P, f"Expected calibration error (ECE, {rel['n_bins']} equal-width bins of the {rel['kind']}): {num(rel['ece'])}; "
                                     f"largest bin gap {num(rel['max_calibration_error'])}.")]
    if c.get("applied"):
        out.append((P, f"The saved model is calibrated with the {c['applied']} method, fitted on the validation rows."))
    out.append((TABLE, ["bin", "rows", "mean predicted", "observed"],
                [[f"{num(rel['edges'][i], 2)}-{num(rel['edges'][i + 1], 2)}", rel["count"][i], num(rel["mean_predicted"][i]), num(rel["observed"][i])]
                 for i in range(rel["n_bins"]) if rel["count"][i]]))
    if with_plots:
        out.append((IMG, plots.reliability(rel), "reliability diagram"))
    ch = c.get("choice")
    if ch:
        losses = ", ".join(f"{k} {num(v)}" for k, v in ch.get("val_log_loss", {}).items())
        out.append((P, f"Calibrator chosen on validation data: {ch['method']} ({ch['reason']}). Cross-validated validation log loss: {losses or '-'}."))
    t = c.get("threshold")
    if t:
        goal = f"lowest cost (false positive {num(t['cost_fp'])}, false negative {num(t['cost_fn'])})" if t["objective"] == "cost" else f"highest {t['objective']}"
        out.append((P, f"Decision threshold for the {goal}, chosen on {t['chosen_on']}: {num(t['threshold'])} (the model's default is 0.5)."))
        out.append((TABLE, ["metric on test rows", "at 0.5", "at tuned threshold", "95% CI"],
                    [[r["metric"], num(r.get("at_default")), num(r["value"]), ci(r["ci_low"], r["ci_high"])] for r in t.get("test", [])]))
    return out


def _error_blocks(d: dict, with_plots: bool) -> list[tuple]:
    e = d.get("errors")
    if not e:
        return []
    out = [(H, 2, "Errors")]
    conf = e.get("confusion")
    if conf:
        out += [(H, 3, "Confusion matrix (rows: true, columns: predicted)"), (TABLE, ["true \\ predicted", *conf["labels"]],
                                                                             [[lab, *row] for lab, row in zip(conf["labels"], conf["matrix"])])]
        if with_plots:
            out.append((IMG, plots.confusion(conf), "confusion matrix"))
    res = e.get("residuals")
    if res:
        q = res["quantiles"]
        out += [(H, 3, "Residuals"), (P, f"Mean residual {num(res['mean'])}, standard deviation {num(res['std'])}; quantiles " + ", ".join(f"{k} {num(v)}" for k, v in q.items()) + ".")]
        if with_plots:
            out.append((IMG, plots.residuals(res), "residual plots"))
    worst = e.get("worst_rows", [])
    if worst:
        classification = "p_true" in worst[0]
        head = ["row", "true", "predicted", "p(true)" if classification else "residual", "loss", "inputs", "top contributions"]
        out += [(H, 3, "Worst-predicted rows"), (TABLE, head, [[w["row"], w["true"], w["predicted"], num(w.get("p_true", w.get("residual"))), num(w["loss"]),
                                                                  ", ".join(f"{k}={v}" for k, v in list(w["inputs"].items())[:8]),
                                                                  ", ".join(f"{k} {v:+.3g}" for k, v in (w.get("top_contributions") or {}).items())] for w in worst])]
    return out


def _explain_blocks(d: dict, with_plots: bool) -> list[tuple]:
    x = d.get("explanations")
    if not x:
        return []
    imp = x["permutation_importance"]
    out = [(H, 2, "Explanations"), (H, 3, f"Permutation importance (drop in {x['permutation_metric']} when a column is shuffled)"),
           (TABLE, ["column", "importance", "std"], [[r["column"], num(r["importance"]), num(r["std"])] for r in imp])]
    if x.get("permutation_note"):
        out.append((P, "Permutation importance " + x["permutation_note"] + "."))
    if with_plots and imp:
        top = imp[:15]
        out.append((IMG, plots.bars([r["column"] for r in top], [r["importance"] for r in top], "Permutation importance", f"drop in {x['permutation_metric']}", [r["std"] for r in top]), "permutation importance"))
    c = x.get("contributions")
    if c:
        out += [(H, 3, f"Per-prediction contributions ({c['library']}, {c['units']}): mean absolute value per input column"),
                (TABLE, ["column", "mean |contribution|"], [[r["column"], num(r["mean_abs_contribution"])] for r in c["mean_abs"]])]
    elif x.get("contributions_note"):
        out.append((P, "Per-prediction contributions: not available - " + x["contributions_note"] + "."))
    return out


def _fairness_blocks(d: dict, with_plots: bool) -> list[tuple]:
    f = d.get("fairness")
    if not f:
        return [(H, 2, "Fairness"), (P, "Not assessed: no sensitive columns were given (use --sensitive COL or sensitive=[...]).")]
    out = [(H, 2, "Fairness")]
    if f.get("sensitive_used_as_features"):
        out.append((P, "Sensitive columns the model uses as inputs: " + ", ".join(f["sensitive_used_as_features"]) + "."))
    for col in f["columns"]:
        out += _fairness_column_blocks(col, with_plots)
    return out


def _fairness_column_blocks(col: dict, with_plots: bool) -> list[tuple]:
    """One sensitive column: each group's metrics with intervals, the gaps against their bounds, the flags."""
    out = [(H, 3, f"By {col['column']}")]
    metric_names = sorted({m for g in col["groups"] for m in g["metrics"]})
    has_rate = any("selection_rate" in g for g in col["groups"])

    def cell(g: dict, m: str) -> str:
        if m not in g["metrics"]:
            return "-"
        v = g["metrics"][m]
        return f"{num(v['value'])} ({ci(v['ci_low'], v['ci_high'])})"

    head = ["group", "rows", *(["positive rate"] if has_rate else []), *[f"{m} (95% CI)" for m in metric_names]]
    rows = [[g["group"] + (" (small)" if g["small"] else ""), g["rows"], *([num(g.get("selection_rate"))] if has_rate else []),
             *[cell(g, m) for m in metric_names]] for g in col["groups"]]
    out.append((TABLE, head, rows))
    gaps = col.get("gaps") or {}
    if gaps:
        out.append((TABLE, ["measure", "value", "95% CI", "bound", "flagged"],
                    [[k, num(v["value"]), ci(v.get("ci_low"), v.get("ci_high")), num(v.get("bound")), "FLAGGED" if v.get("flagged") else "ok"]
                     for k, v in gaps.items()]))
    if col.get("note"):
        out.append((P, col["note"]))
    out.append((LIST, col["flags"]) if col["flags"] else (P, "No fairness measure out of bounds for this column."))
    if with_plots and has_rate:
        big = [g for g in col["groups"] if "selection_rate" in g]
        out.append((IMG, plots.bars([g["group"] for g in big], [g["selection_rate"] for g in big],
                                    f"Positive-prediction rate by {col['column']}", "share predicted positive"), "positive rate by group"))
    return out


def _slice_blocks(d: dict, with_plots: bool) -> list[tuple]:
    s = d.get("slices")
    if not s:
        return []
    out = [(H, 2, "Slices")]
    metric = d.get("metric")
    worst = s.get("worst", {})
    err = worst.get("error_metric", "accuracy")

    def table(entries):
        names = list(dict.fromkeys([err, metric]))
        return (TABLE, ["slice", "rows", *[f"{m} (95% CI)" for m in names], "worse than overall", "outside interval"],
                [[e["slice"], e["rows"], *[f"{num(e[m]['value'])} ({ci(e[m]['ci_low'], e[m]['ci_high'])})" if e.get(m) else "-" for m in names],
                  num(e.get("worse_than_overall")), num(e.get("significant"))] for e in entries])

    if s.get("user"):
        out += [(H, 3, "Chosen slices"), table(s["user"])]
    if worst.get("skipped"):
        out += [(H, 3, "Worst slices found automatically"), (P, f"Not searched ({worst['skipped']}).")]
        return out
    overall = worst.get("overall", {})
    out.append((H, 3, f"Worst slices found automatically ({worst.get('searched', 0)} single-column slices of at least {worst.get('min_rows')} rows searched; overall {err} {num(overall.get(err))})"))
    out.append(table(worst["slices"]) if worst.get("slices") else (P, "No slice is worse than the whole set."))
    return out


# ---------------------------------------------------------------- renderers
def to_markdown(data: dict) -> str:
    lines = []
    for b in blocks(data, with_plots=False):
        if b[0] == H:
            lines += ["#" * b[1] + " " + b[2], ""]
        elif b[0] == P:
            lines += [b[1], ""]
        elif b[0] == LIST:
            lines += [f"- {item}" for item in b[1]] + [""]
        elif b[0] == TABLE:
            cells = lambda row: "| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in row) + " |"  # noqa: E731
            lines += [cells(b[1]), "|" + "---|" * len(b[1])] + [cells(r) for r in b[2]] + [""]
    return "\n".join(lines)


CSS = """body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:.9em}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f3f3f3}h1{border-bottom:2px solid #333}h2{border-bottom:1px solid #ccc;margin-top:1.6em}img{max-width:100%;display:block;margin:.5em 0}
li{margin:.2em 0}"""


def to_html(data: dict) -> str:
    e = html.escape
    body = []
    for b in blocks(data, with_plots=True):
        if b[0] == H:
            body.append(f"<h{b[1]}>{e(str(b[2]))}</h{b[1]}>")
        elif b[0] == P:
            body.append(f"<p>{e(str(b[1]))}</p>")
        elif b[0] == LIST:
            body.append("<ul>" + "".join(f"<li>{e(str(i))}</li>" for i in b[1]) + "</ul>")
        elif b[0] == TABLE:
            head = "".join(f"<th>{e(str(c))}</th>" for c in b[1])
            rows = "".join("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in r) + "</tr>" for r in b[2])
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif b[0] == IMG:
            body.append(f'<img alt="{e(b[2])}" src="data:image/png;base64,{b[1]}">')
    title = e(str(data.get("title", "Evaluation")))
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>"
            f"<style>{CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
