"""Query monitoring for a served index: `trainyard monitor NAME` when NAME is a document index.

Reads the queries the server logged (`/v1/search`, `/v1/ask`) and compares the current window (the newer
half of the logged queries, or those after `current_since`) with the reference window (the rows before it):

- the share of `/v1/ask` questions answered "no relevant passage found" (warn above `max_unanswered`);
- query drift: the best cosine of each query with the index (a proxy for "does the corpus cover what people
  ask"), tested with a two-sample Kolmogorov-Smirnov test, and the share of query words the index's
  vocabulary has never seen (out-of-vocabulary), both reference vs current. Drift when the KS p-value is
  under 0.01 and the median best cosine fell by more than 0.05, or the OOV share rose by more than 0.15.

Exit code as `monitor`: 0 ok, 1 warn (many unanswered), 2 drift.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np

from trainyard.rag.index import tokenize


def query_rows(store, name: str, since: datetime | None = None, last: int | None = None) -> list[dict]:
    rows = []
    for r in store.predictions(name, since=since, limit=last):
        inputs, outputs = r.get("inputs") or {}, r.get("outputs") or {}
        text = inputs.get("question") or inputs.get("query")
        if not isinstance(text, str):
            continue
        rows.append({"at": r["created_at"], "endpoint": inputs.get("endpoint"), "text": text,
                     "best_cosine": outputs.get("best_cosine"), "answered": outputs.get("answered")})
    return rows


def oov_share(texts: list[str], vocab: dict) -> np.ndarray:
    out = []
    for tokens in tokenize(texts):
        out.append(sum(t not in vocab for t in tokens) / len(tokens) if tokens else 0.0)
    return np.array(out)


def _window_stats(rows: list[dict], vocab: dict) -> dict:
    cos = np.array([r["best_cosine"] for r in rows if r["best_cosine"] is not None], dtype=float)
    asked = [r for r in rows if r["endpoint"] == "ask" and r["answered"] is not None]
    oov = oov_share([r["text"] for r in rows], vocab)
    return {"queries": len(rows), "asked": len(asked),
            "unanswered_share": (sum(not r["answered"] for r in asked) / len(asked)) if asked else None,
            "median_best_cosine": float(np.median(cos)) if len(cos) else None, "oov_share": float(oov.mean()) if len(oov) else None,
            "_cos": cos}


def query_report(store, index, name: str, *, since: datetime | None = None, last: int | None = None,
                 max_unanswered: float = 0.3) -> dict:
    """{"reference", "current", "drift", "findings", "exit_code"} over the logged queries of index `name`."""
    from scipy.stats import ks_2samp

    rows = query_rows(store, name, since, last)
    vocab = index.bm25.vocab_dict
    half = len(rows) // 2
    ref, cur = _window_stats(rows[:half], vocab), _window_stats(rows[half:], vocab)
    findings, code = [], 0
    drift = {}
    if len(ref["_cos"]) >= 5 and len(cur["_cos"]) >= 5:
        test = ks_2samp(ref["_cos"], cur["_cos"])
        drop = ref["median_best_cosine"] - cur["median_best_cosine"]
        drift = {"ks_statistic": float(test.statistic), "ks_pvalue": float(test.pvalue), "median_cosine_drop": drop,
                 "oov_rise": cur["oov_share"] - ref["oov_share"]}
        if (test.pvalue < 0.01 and drop > 0.05) or drift["oov_rise"] > 0.15:
            findings.append(f"query drift: median best cosine {ref['median_best_cosine']:.3f} -> {cur['median_best_cosine']:.3f} "
                            f"(KS p={test.pvalue:.2g}), out-of-vocabulary words {ref['oov_share']:.0%} -> {cur['oov_share']:.0%}")
            code = 2
    elif rows:
        findings.append(f"only {len(rows)} logged queries: too few to test drift (5 per window needed)")
    if cur["unanswered_share"] is not None and cur["unanswered_share"] > max_unanswered:
        findings.append(f"{cur['unanswered_share']:.0%} of recent questions got no answer (over {max_unanswered:.0%}): "
                        "the documents may not cover what people ask")
        code = max(code, 1)
    for w in (ref, cur):
        w.pop("_cos")
    return {"index": name, "queries": len(rows), "reference": ref, "current": cur, "drift": drift, "findings": findings, "exit_code": code}
