"""`trainyard index`, `trainyard search`, `trainyard ask`: documents in, cited answers out (trainyard.rag).

`trainyard evaluate NAME --queries q.jsonl` on an index runs `evaluate_index` below, `trainyard monitor NAME` on
one `monitor_index`. A generator (a registered language model or a Hugging Face directory) comes from
`serve/answering.py`, a layer that may import both `rag` and `lm`.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import typer

from trainyard.commands._common import console, err_console, print_json, table
from trainyard.errors import ConfigError
from trainyard.evaluation.render import ci, num
from trainyard.rag.card import write_card
from trainyard.registry.workspace import Workspace
from trainyard.runs.driver import execute
from trainyard.serve.answering import lm_generator


def register(app: typer.Typer) -> None:
    app.command("index")(index)
    app.command("search")(search)
    app.command("ask")(ask)


def index(
    name: str = typer.Argument(..., help="Registry name of the index (each build registers a new version)."),
    folder: Path = typer.Argument(..., help="Folder (or file) of documents: .md, .rst, .txt, .html, .pdf."),
    encoder: str = typer.Option("minilm", "--encoder", help="minilm, a registered encoder (docs-encoder@1) or a Hugging Face directory."),
    chunk: int = typer.Option(180, "--chunk", help="Words per passage (MiniLM reads about 190)."),
    overlap: int = typer.Option(30, "--overlap", help="Words a passage repeats from the previous one in its section."),
    update: bool = typer.Option(False, "--update", help="Start from the latest version: embed only new and changed files, drop deleted ones."),
    headings: bool = typer.Option(True, "--headings/--no-headings", help="Index each passage with its section heading."),
    threads: int = typer.Option(None, "--threads", help="Torch threads for embedding (default: torch's choice)."),
    batch_size: int = typer.Option(64, "--batch-size", help="Passages per encoder batch."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Index a folder of documents for retrieval (BM25 + dense vectors) and register it as a versioned artifact."""
    from trainyard.rag.build import IndexPlan, IndexSettings

    settings = IndexSettings(encoder=encoder, chunk=chunk, overlap=overlap, headings=headings, threads=threads, batch_size=batch_size)
    with (contextlib.nullcontext() if as_json else console.status("indexing", spinner="dots")) as status:
        def progress(kind: str, info: dict) -> None:
            if status is not None and kind in ("stage", "embed"):
                status.update(info["message"] if kind == "stage" else f"embedding {info['done']}/{info['total']} passages")

        ws = Workspace.resolve()
        result = execute(IndexPlan(name, folder, settings, update=update), ws, emit=progress)
    write_card(ws.home, result.name, result.version, result.model.meta)
    show_index_result(result, as_json)


def show_index_result(result, as_json: bool) -> None:
    """What `index` (and `resume` of an index build) prints."""
    meta = result.model.meta
    s, cal, problems = meta["stats"], meta["calibration"], meta["problems"]
    if as_json:
        print_json({"name": result.name, "version": result.version, "run_id": result.run_id, "stats": s, "problems": problems,
                    "calibration": cal})
        return
    for p in problems:
        err_console.print(f"[yellow]skipped[/] {p['path']}: {p['reason']}", highlight=False)
    change = (f" (+{len(s['added'])} new, {len(s['changed'])} changed, -{len(s['removed'])} removed; {s['reused']} passages reused)"
              if s["reused"] or s["removed"] else "")
    rate = f", {s['chunks_per_second']:.0f} passages/s" if s.get("chunks_per_second") else ""
    console.print(f"Indexed {s['files']} files into {s['chunks']} passages{change}: embedded {s['embedded']} in {s['embed_seconds']:.1f}s{rate}. "
                  f"No-answer threshold: cosine {cal['threshold']} ({cal['method']}).", highlight=False)
    console.print(f"Registered [bold]{result.name}@{result.version}[/], run {result.run_id}.")


def search(
    name: str = typer.Argument(..., help="Index: NAME, NAME@VERSION or NAME@ALIAS."),
    query: str = typer.Argument(..., help="What to look for."),
    k: int = typer.Option(5, "--k", "-k", help="Passages to return."),
    mode: str = typer.Option("hybrid", "--mode", help="hybrid (BM25 + dense, rank fusion), bm25 or dense."),
    path: str = typer.Option(None, "--path", help="Only documents whose path matches this glob (e.g. 'ops/*.md')."),
    encoder: str = typer.Option(None, "--encoder", help="Query encoder (must be the one that built the index; default: it)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """The passages of an index that best match a query."""
    from trainyard.rag.retrieve import open_retriever

    _check_k(k)
    retriever = open_retriever(name, encoder=encoder)
    hits = retriever.search(query, k=k, mode=mode, path=path)
    if as_json:
        print_json({"index": retriever.ref, "query": query, "mode": mode, "results": [h.to_dict() for h in hits]})
        return
    console.print(table(f"{retriever.ref}: {query}", ["rank", "id", "source", "score", "passage"],
                        [[h.rank, h.chunk.id, _source(h.chunk), f"{h.score:.4g}", h.chunk.text[:100]] for h in hits]))


def ask(
    name: str = typer.Argument(..., help="Index: NAME, NAME@VERSION or NAME@ALIAS."),
    question: str = typer.Argument(..., help="The question."),
    k: int = typer.Option(5, "--k", "-k", help="Passages to answer from."),
    generator: str = typer.Option(None, "--generator", help="Language model to write the answer (registry ref or Hugging Face directory); default: extractive."),
    mode: str = typer.Option("hybrid", "--mode", help="hybrid, bm25 or dense retrieval."),
    path: str = typer.Option(None, "--path", help="Only documents whose path matches this glob."),
    threshold: float = typer.Option(None, "--threshold", help="No-answer threshold on the best cosine (default: the index's calibrated one)."),
    max_tokens: int = typer.Option(200, "--max-tokens", help="With --generator: most tokens in the answer."),
    encoder: str = typer.Option(None, "--encoder", help="Query encoder (must be the one that built the index; default: it)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Answer a question from an index, citing the passages used; says so when nothing relevant is found."""
    from trainyard.rag.answer import stream_ask
    from trainyard.rag.retrieve import open_retriever

    _check_k(k)
    retriever = open_retriever(name, encoder=encoder)
    gen = lm_generator(generator, max_tokens) if generator else None
    answer = None
    for kind, payload in stream_ask(retriever, question, k=k, mode=mode, path=path, threshold=threshold, generator=gen):
        if kind == "text" and not as_json:
            console.print(payload, end="", highlight=False, markup=False)
        elif kind == "done":
            answer = payload
    if as_json:
        print_json(answer.to_dict())
        return
    console.print()
    data = answer.to_dict()
    for c in data["citations"]:
        console.print(f"  [{c['id']}] {c['path']}" + (f" - {c['heading']}" if c["heading"] else "") + (f" (page {c['page']})" if c["page"] else ""),
                      highlight=False, markup=False)
    if data["invalid_citations"]:
        err_console.print(f"[yellow]the answer cites ids that were not retrieved:[/] {', '.join(data['invalid_citations'])}")
    err_console.print(f"[dim]{retriever.ref}: best cosine {answer.best_cosine:.3f}, threshold {answer.threshold:.3f}, {answer.method}[/]")


def evaluate_index(ref: str, queries: Path, *, k: int = 10, generator: str | None = None, n_boot: int = 1000, seed: int = 0,
                   answers: bool = True, as_json: bool = False) -> None:
    """What `trainyard evaluate` runs for a document index."""
    from trainyard.rag import evaluate as rag_evaluate  # numpy: loaded when an index is evaluated, not for --help

    from trainyard.rag.retrieve import open_retriever

    retriever = open_retriever(ref)
    report = rag_evaluate.evaluate_index(retriever, queries, k=k, generator=lm_generator(generator) if generator else None, answers=answers,
                 n_boot=n_boot, seed=seed)
    folder = Workspace.resolve().home / "reports" / retriever.name / f"v{retriever.version}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"retrieval-{Path(queries).stem}.json").write_text(json.dumps(report, indent=2))
    card = write_card(Workspace.resolve().home, retriever.name, retriever.version, retriever.index.meta, report)
    if as_json:
        print_json(report)
        return
    rows = [[mode, metric, num(v["value"]), ci(v["ci_low"], v["ci_high"])] for mode, ms in report["retrieval"].items() for metric, v in ms.items()]
    console.print(table(f"{retriever.ref} on {queries} ({report['answerable']} labelled of {report['queries']} queries)",
                        ["retrieval", "metric", "value", "95% CI"], rows))
    if answers:
        a = report["answers"]
        rows = [[key, num(v["value"]), ci(v["ci_low"], v["ci_high"]), v["n"]] for key, v in a.items() if isinstance(v, dict)]
        console.print(table(f"Answers ({a['method']}, threshold {a['threshold']:.3f})", ["measure", "value", "95% CI", "queries"], rows))
    console.print(f"Report: {folder / f'retrieval-{Path(queries).stem}.json'}; model card: {card}", highlight=False)


def _source(chunk) -> str:
    return chunk.path + (f" - {chunk.heading}" if chunk.heading else "") + (f" p.{chunk.page}" if chunk.page else "")


def _check_k(k: int) -> None:
    if not 1 <= k <= 100:
        raise ConfigError(f"--k {k} is out of range.", "ask for 1 to 100 passages.")


def show_encoder_result(result, as_json: bool) -> None:
    """What `train --task embedding` (and its `resume`) prints: the held-out retrieval before and after."""
    if as_json:
        print_json({"run_id": result.run_id, "name": result.name, "version": result.version, "metrics": result.metrics,
                    "steps": result.steps, "seconds": result.seconds})
        return
    m = result.metrics
    rows = [[k, f"{m['before_' + k]:.4f}", f"{m['after_' + k]:.4f}"] for k in ("mrr@10", "recall@1", "recall@10")]
    console.print(table(f"Held-out retrieval ({m['held_out_queries']} queries against {m['held_out_passages']} passages)",
                        ["metric", "base", "fine-tuned"], rows))
    console.print(f"Registered [bold]{result.name}@{result.version}[/] after {result.steps} steps ({result.seconds:.0f}s), run {result.run_id}. "
                  f"Index with it: `trainyard index NAME FOLDER --encoder {result.name}@{result.version}`.")


def is_index(ref: str) -> bool:
    from trainyard.rag.serving import is_rag_index

    return is_rag_index(Workspace.resolve(), ref)


def monitor_index(ref: str, *, since: str | None = None, last: int | None = None, as_json: bool = False) -> int:
    """What `trainyard monitor` runs for a document index: unanswered share and query drift from the query log."""
    from trainyard.rag.monitor import query_report
    from trainyard.rag.retrieve import open_retriever

    from trainyard.monitor.window import parse_since  # pandas: loaded only when monitoring

    retriever = open_retriever(ref)
    report = query_report(Workspace.resolve().store, retriever.index, retriever.name, since=parse_since(since), last=last)
    if as_json:
        print_json(report)
        return report["exit_code"]
    rows = [[key, report["reference"][key], report["current"][key]] for key in report["current"]]
    console.print(table(f"{retriever.name}: {report['queries']} logged queries (older half vs newer half)", ["measure", "reference", "current"],
                        [[k, _num(a), _num(b)] for k, a, b in rows]))
    for finding in report["findings"] or ["no drift, few unanswered questions"]:
        console.print(f"- {finding}", highlight=False)
    return report["exit_code"]


def _num(v) -> str:
    return "-" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))
