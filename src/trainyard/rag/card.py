"""The model card of a document index (Markdown): what it holds, how it was built, how well it retrieves.

Written by `trainyard index` (build facts) and rewritten by `trainyard evaluate NAME --queries` (with the
measured retrieval and answer quality) into the workspace's reports/NAME/vVERSION/model_card.md.
"""

from __future__ import annotations

from pathlib import Path


def _fmt(v: dict) -> str:
    return f"{v['value']:.3f} [{v['ci_low']:.3f}, {v['ci_high']:.3f}]"


def card_markdown(name: str, version: int, meta: dict, evaluation: dict | None = None) -> str:
    s, st, cal, enc = meta.get("settings", {}), meta.get("stats", {}), meta.get("calibration", {}), meta.get("encoder", {})
    lines = [f"# Document index {name}@{version}", "",
             f"- Source: `{meta.get('source')}`: {st.get('files')} files, {st.get('chunks')} passages",
             f"- Encoder: {enc.get('label')} (weights {enc.get('id')}, {enc.get('dim')} dimensions)",
             f"- Chunking: {s.get('chunk')} words, overlap {s.get('overlap')}, headings {'indexed' if s.get('headings') else 'not indexed'}",
             "- Retrieval: exact inner product (dense) + BM25 (bm25s), fused by reciprocal rank (k=60)",
             f"- No-answer threshold: cosine {cal.get('threshold')} ({cal.get('method')})"]
    if cal.get("queries"):
        lines.append(f"  - {cal['queries']} pseudo-queries: median best cosine {cal.get('answerable_median')} with their document, "
                     f"{cal.get('unanswerable_median')} without; balanced accuracy {cal.get('balanced_accuracy')}")
    problems = meta.get("problems") or []
    lines.append(f"- Files not indexed: {len(problems)}" + "".join(f"\n  - `{p['path']}`: {p['reason']}" for p in problems[:20]))
    if evaluation:
        lines += ["", f"## Retrieval on {evaluation.get('queries')} queries ({evaluation.get('answerable')} labelled)", "",
                  "| mode | " + " | ".join(next(iter(evaluation["retrieval"].values()), {}).keys()) + " |",
                  "|---|" + "---|" * len(next(iter(evaluation["retrieval"].values()), {}))]
        for mode, metrics in evaluation["retrieval"].items():
            lines.append(f"| {mode} | " + " | ".join(_fmt(v) for v in metrics.values()) + " |")
        answers = evaluation.get("answers") or {}
        shown = {k: v for k, v in answers.items() if isinstance(v, dict)}
        if shown:
            lines += ["", f"## Answers ({answers.get('method')}, threshold {answers.get('threshold')})", ""]
            lines += [f"- {k.replace('_', ' ')}: {_fmt(v)} over {v['n']} queries" for k, v in shown.items()]
    return "\n".join(lines) + "\n"


def write_card(home: Path, name: str, version: int, meta: dict, evaluation: dict | None = None) -> Path:
    folder = Path(home) / "reports" / name / f"v{version}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model_card.md"
    path.write_text(card_markdown(name, version, meta, evaluation))
    return path
