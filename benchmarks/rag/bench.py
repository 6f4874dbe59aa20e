"""Retrieval on the Python documentation: BM25, dense, hybrid, hybrid with a fine-tuned encoder, and LlamaIndex.

    apt-get install -y python3.11-doc
    PYTHONPATH=src python benchmarks/rag/bench.py [--chunks 1000] [--queries 300] [--peer /tmp/peer-llamaindex/bin/python]

Corpus: the reStructuredText sources of the Python 3.11 docs (/usr/share/doc/python3.11/html/_sources), a
seeded sample of whole pages until --chunks passages (the whole set is 11k passages; embedding it on one
shared core would take ~15 minutes of CPU).

Queries and labels come from the documents' structure, never from a retriever: every section whose
heading (reST roles and markup stripped) has at least two words, is unique in the corpus and sits over at
least 20 words of text gives one query, the heading, whose relevant unit is that section: it is found when
any of its passages is in the top 10 (recall@10; MRR@10 and nDCG@10 of its first passage's rank).
The index is built with --no-headings, so the heading text is not in any indexed passage (the query has to
be matched by the section's content). The sections are split in two by a seeded coin: one half gives the
test queries, the other half (heading -> the section's first passage) the pairs the encoder is fine-tuned
on, so the fine-tuned row is measured on sections it never saw.

Latency at 100k passages: the sample's vectors are tiled (with 1% noise, renormalised) and its BM25 token
lists repeated to 100k; the queries are the test headings. Torch runs on one thread.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

SOURCES = Path("/usr/share/doc/python3.11/html/_sources")
HERE = Path(__file__).resolve().parent


def build_index(name: str, folder: Path, settings, home: Path):
    """An index built by the run driver, as `trainyard index` builds it (RunResult; its model is the index)."""
    from trainyard.rag.build import IndexPlan
    from trainyard.registry.workspace import Workspace
    from trainyard.runs.driver import execute

    return execute(IndexPlan(name, folder, settings), Workspace.resolve(home))


def train_encoder(pairs: Path, settings, home: Path):
    from trainyard.rag.finetune import EncoderPlan
    from trainyard.registry.workspace import Workspace
    from trainyard.runs.driver import execute

    return execute(EncoderPlan(pairs, settings), Workspace.resolve(home))


def clean_heading(text: str) -> str:
    text = re.sub(r":[a-z:]+:`~?([^`<]*?)(?:\s*<[^>]*>)?`", r"\1", text)
    text = re.sub(r"[`*]", "", text).replace("---", "-")
    return " ".join(text.split())


def sample_corpus(target_chunks: int, seed: int, out: Path):
    from trainyard.rag.chunking import chunk_document
    from trainyard.rag.ingest import list_files, read_document, relative_name

    files = list_files(SOURCES)
    order = np.random.default_rng(seed).permutation(len(files))
    total, docs = 0, []
    for i in order:
        rel = relative_name(files[i], SOURCES)
        doc = read_document(files[i], rel)
        chunks = chunk_document(doc)
        if not chunks:
            continue
        dest = out / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(files[i], dest)
        docs.append(doc)
        total += len(chunks)
        if total >= target_chunks:
            break
    return docs


def make_queries(index, seed: int):
    """(test queries, training pairs) from the index's sections (see the module docstring)."""
    sections: dict[tuple[str, str], list] = {}
    for c in index.chunks:
        sections.setdefault((c.path, c.heading), []).append(c)
    counts: dict[str, int] = {}
    for _, heading in sections:
        key = clean_heading(heading).lower()
        counts[key] = counts.get(key, 0) + 1
    rng = np.random.default_rng(seed)
    test, pairs = [], []
    for (path, heading), chunks in sorted(sections.items()):
        query = clean_heading(heading)
        if len(query.split()) < 2 or counts[query.lower()] > 1 or sum(len(c.text.split()) for c in chunks) < 20:
            continue
        if rng.random() < 0.5:
            test.append({"query": query, "section": f"{path}#{heading}",
                         "probes": [" ".join(c.text.split())[:60] for c in chunks]})
        else:
            pairs.append({"query": query, "passage": chunks[0].text})
    return test, pairs


def section_metrics(retriever, queries, modes=("bm25", "dense", "hybrid"), n_boot: int = 1000) -> dict:
    """recall@10, MRR@10, nDCG@10 with the section as the unit (a section is found when any of its passages is in the
    top 10; one relevant unit per query), each with a 95% bootstrap interval: the same definition as the peer's."""
    from trainyard.rag.evaluate import bootstrap, query_metrics

    vectors = retriever.embed([q["query"] for q in queries])
    out = {}
    for mode in modes:
        rows = []
        for q, v in zip(queries, vectors):
            hits = retriever.search(q["query"], k=10, mode=mode, vector=v)
            units = list(dict.fromkeys(f"{h.chunk.path}#{h.chunk.heading}" for h in hits))
            rows.append(query_metrics(units, {q["section"]}, 10))
        out[mode] = {}
        for name in rows[0]:
            values = np.array([r[name] for r in rows])
            low, high = bootstrap(values, n_boot)
            out[mode][name] = {"value": float(values.mean()), "ci_low": low, "ci_high": high}
    return out


def other_page_queries(docs, limit: int, seed: int) -> list[str]:
    """Headings (same filters as the test queries) of pages that are not in the sample: questions the index should
    not be able to answer (though the Python docs overlap a lot: some will be covered by another page)."""
    from trainyard.rag.ingest import list_files, read_document, relative_name

    taken = {d.path for d in docs}
    out = []
    for path in list_files(SOURCES):
        rel = relative_name(path, SOURCES)
        if rel in taken:
            continue
        for section in read_document(path, rel).sections:
            q = clean_heading(section.heading)
            if len(q.split()) >= 2 and len(section.text.split()) >= 20:
                out.append(q)
    rng = np.random.default_rng(seed)
    return [out[i] for i in rng.permutation(len(out))[:limit]]


def threshold_check(retriever, answerable: list[str], unanswerable: list[str]) -> dict:
    """How the calibrated no-answer threshold does: answered share of answerable queries, refused share of the others."""
    t = retriever.threshold
    best = lambda qs: np.array([retriever.best_cosine(v) for v in retriever.embed(qs)])  # noqa: E731
    a, u = best(answerable), best(unanswerable)
    return {"threshold": t, "calibration": retriever.index.meta["calibration"], "answerable": len(a),
            "answered_share": round(float((a >= t).mean()), 3), "other_pages": len(u), "refused_share": round(float((u < t).mean()), 3),
            "median_best_cosine_answerable": round(float(np.median(a)), 3), "median_best_cosine_other_pages": round(float(np.median(u)), 3)}


def calibration_only(args) -> None:
    """--calibration-only: a smaller sample, the index, and the threshold check (no peer, no fine-tuning)."""
    import torch

    from trainyard.rag.build import IndexSettings
    from trainyard.rag.retrieve import open_retriever

    torch.set_num_threads(1)
    print("load:", os.getloadavg(), flush=True)
    work = Path(tempfile.mkdtemp(prefix="rag-cal-"))
    docs = sample_corpus(args.chunks, args.seed, work / "docs")
    build_index("pydocs", work / "docs", IndexSettings(headings=False, threads=1), work / "ws")
    retriever = open_retriever("pydocs", workspace=work / "ws", threads=1)
    test, _ = make_queries(retriever.index, args.seed)
    out = {"passages": len(retriever.index), **threshold_check(retriever, [q["query"] for q in test],
                                                                other_page_queries(docs, len(test), args.seed)),
           "load_after": os.getloadavg()}
    print(json.dumps(out, indent=1))
    shutil.rmtree(work, ignore_errors=True)


def other_page_pairs(docs, limit: int, seed: int) -> list[dict]:
    """(heading -> the section's first passage) pairs from pages not in the sample: more training data for the
    encoder that cannot touch the test sections."""
    from trainyard.rag.chunking import chunk_document
    from trainyard.rag.ingest import list_files, read_document, relative_name

    taken, out = {d.path for d in docs}, []
    for path in list_files(SOURCES):
        rel = relative_name(path, SOURCES)
        if rel in taken:
            continue
        first: dict[str, str] = {}
        for c in chunk_document(read_document(path, rel)):
            first.setdefault(c.heading, c.text)
        out += [{"query": clean_heading(h), "passage": t} for h, t in first.items()
                if len(clean_heading(h).split()) >= 2 and len(t.split()) >= 20]
    rng = np.random.default_rng(seed)
    return [out[i] for i in rng.permutation(len(out))[:limit]]


def finetune_only(args) -> None:
    """--finetune-only N: the same sample and test queries as the full run (same seed), the encoder fine-tuned on the
    training half plus N pairs from pages outside the sample, then the fine-tuned index evaluated."""
    import torch

    from trainyard.rag.build import IndexSettings
    from trainyard.rag.chunking import Chunk, chunk_document
    from trainyard.rag.finetune import EmbeddingSettings
    from trainyard.rag.retrieve import open_retriever

    torch.set_num_threads(1)
    print("load:", os.getloadavg(), flush=True)
    work = Path(tempfile.mkdtemp(prefix="rag-ft-"))
    docs = sample_corpus(args.chunks, args.seed, work / "docs")

    class Chunks:  # make_queries reads only .chunks: passages without embedding them
        chunks: list[Chunk] = [c for d in docs for c in chunk_document(d)]

    test, pairs = make_queries(Chunks, args.seed)
    pairs = pairs + other_page_pairs(docs, args.finetune_only, args.seed)
    (work / "pairs.jsonl").write_text("\n".join(json.dumps(p) for p in pairs))
    tuned, wall, cpu = timed(lambda: train_encoder(work / "pairs.jsonl", EmbeddingSettings(name="enc", epochs=1, batch_size=16, lr=5e-5,
                                                                                           threads=1), work / "ws"))
    build_index("tuned", work / "docs", IndexSettings(encoder="enc@1", headings=False, threads=1), work / "ws")
    out = {"test_queries": len(test[: args.queries]), "train_pairs": tuned.metrics["train_pairs"], "steps": tuned.steps,
           "finetune_wall_s": round(wall, 1), "finetune_cpu_s": round(cpu, 1), "held_out_pairs": tuned.metrics,
           "metrics": section_metrics(open_retriever("tuned", workspace=work / "ws", threads=1), test[: args.queries], modes=("dense", "hybrid")),
           "load_after": os.getloadavg()}
    print(json.dumps(out, indent=1))
    Path(args.out).with_name("results-finetune.json").write_text(json.dumps(out, indent=2))
    shutil.rmtree(work, ignore_errors=True)


def timed(fn):
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def latency_at(retriever, queries, n: int, seed: int) -> dict:
    """p50/p99 milliseconds per query at n passages (tiled vectors, repeated BM25 token lists)."""
    from trainyard.rag.index import RagIndex, build_bm25

    index = retriever.index
    reps = -(-n // len(index))
    rng = np.random.default_rng(seed)
    vectors = np.tile(index.vectors, (reps, 1))[:n]
    vectors = vectors + rng.normal(0, 0.01, vectors.shape).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    chunks = (index.chunks * reps)[:n]
    texts = [c.text for c in chunks]
    bm25, bm25_wall, _ = timed(lambda: build_bm25(texts))
    big = RagIndex(chunks, vectors, bm25, index.meta)
    qs = [q["query"] for q in queries]
    qv, enc_wall, _ = timed(lambda: retriever.embed(qs))
    out = {"passages": n, "bm25_build_s": round(bm25_wall, 1), "encode_ms_per_query": round(1000 * enc_wall / len(qs), 2),
           "vectors_mb": round(vectors.nbytes / 2**20, 1)}
    modes = ("dense", "bm25", "hybrid")
    ms = {m: [] for m in modes}
    for q, v in zip(qs[:3], qv[:3]):  # warm-up
        big.search(q, v, k=10, mode="hybrid")
    for q, v in zip(qs, qv):  # interleaved: the machine's load falls on every mode alike
        for mode in modes:
            t = time.perf_counter()
            big.search(q, v, k=10, mode=mode)
            ms[mode].append(1000 * (time.perf_counter() - t))
    for mode in modes:
        out[mode] = {"p50_ms": round(float(np.percentile(ms[mode], 50)), 2), "p99_ms": round(float(np.percentile(ms[mode], 99)), 2)}
    return out


def run_peer(python: str, docs, queries, workdir: Path) -> dict:
    from trainyard.rag.encoder import minilm_path

    (workdir / "peer_docs.jsonl").write_text("\n".join(json.dumps({"path": d.path, "text": "\n\n".join(s.text for s in d.sections)})
                                                       for d in docs))
    (workdir / "peer_queries.jsonl").write_text("\n".join(json.dumps({"query": q["query"], "probes": q["probes"]}) for q in queries))
    env = {**os.environ, "PYTHONPATH": "", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run([python, str(HERE / "peer_llamaindex.py"), str(workdir), str(minilm_path())], env=env,
                          capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    import torch

    from trainyard.rag.build import IndexSettings
    from trainyard.rag.finetune import EmbeddingSettings
    from trainyard.rag.retrieve import open_retriever

    ap = argparse.ArgumentParser()
    ap.add_argument("--chunks", type=int, default=1000)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--pairs", type=int, default=400)
    ap.add_argument("--latency-at", type=int, default=100_000)
    ap.add_argument("--peer", default="/tmp/peer-llamaindex/bin/python")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(HERE / "results.json"))
    ap.add_argument("--calibration-only", action="store_true", help="Only the no-answer threshold check, on --chunks passages.")
    ap.add_argument("--finetune-only", type=int, default=0, metavar="N",
                    help="Only the fine-tuned rows, with N extra training pairs from pages outside the sample.")
    args = ap.parse_args()
    if args.calibration_only:
        return calibration_only(args)
    if args.finetune_only:
        return finetune_only(args)
    torch.set_num_threads(1)
    print("load:", os.getloadavg(), flush=True)
    work = Path(tempfile.mkdtemp(prefix="rag-bench-"))
    home, corpus = work / "ws", work / "docs"
    docs = sample_corpus(args.chunks, args.seed, corpus)
    settings = IndexSettings(headings=False, threads=1)
    built, wall, cpu = timed(lambda: build_index("pydocs", corpus, settings, home))
    stats = built.model.meta["stats"]
    size_mb = sum(p.stat().st_size for p in (home / "artifacts" / "pydocs").rglob("*") if p.is_file()) / 2**20
    results = {"corpus": {"pages": len(docs), "passages": stats["chunks"], "index_mb": round(size_mb, 2)},
               "index_build": {"wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "embed_s": stats["embed_seconds"],
                               "passages_per_s_embed": stats["chunks_per_second"],
                               "passages_per_s_total": round(stats["chunks"] / wall, 1)}}
    print(json.dumps(results), flush=True)
    retriever = open_retriever("pydocs", workspace=home, threads=1)
    test, pairs = make_queries(retriever.index, args.seed)
    test = test[: args.queries]
    pairs = pairs[: args.pairs]
    results["queries"] = {"test": len(test), "train_pairs": len(pairs)}
    (work / "pairs.jsonl").write_text("\n".join(json.dumps(p) for p in pairs))
    (work / "queries.jsonl").write_text("\n".join(json.dumps(q) for q in test))
    (metrics, wall, cpu) = timed(lambda: section_metrics(retriever, test))
    results["trainyard"] = {"metrics": metrics, "eval_wall_s": round(wall, 1), "eval_cpu_s": round(cpu, 1)}
    print(json.dumps(results["trainyard"]), flush=True)
    if args.peer and Path(args.peer).exists():
        peer, wall, cpu = timed(lambda: run_peer(args.peer, docs, test, work))
        results["llamaindex"] = {**peer, "wall_s": round(wall, 1)}
        print(json.dumps(results["llamaindex"]), flush=True)
    else:
        results["llamaindex"] = {"error": f"no peer interpreter at {args.peer}"}
    tuned, wall, cpu = timed(lambda: train_encoder(work / "pairs.jsonl", EmbeddingSettings(name="pydocs-encoder", epochs=1, batch_size=16,
                                                                                           lr=5e-5, threads=1), home))
    results["finetune"] = {"wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "steps": tuned.steps, "held_out_pairs": tuned.metrics}
    tuned_build, wall, cpu = timed(lambda: build_index("pydocs-tuned", corpus, IndexSettings(encoder="pydocs-encoder@1", headings=False,
                                                                                              threads=1), home))
    tuned_retriever = open_retriever("pydocs-tuned", workspace=home, threads=1)
    results["finetuned"] = {"metrics": section_metrics(tuned_retriever, test, modes=("dense", "hybrid")),
                            "index_wall_s": round(wall, 1), "index_cpu_s": round(cpu, 1)}
    print(json.dumps(results["finetuned"]), flush=True)
    results["latency"] = latency_at(retriever, test[:200], args.latency_at, args.seed)
    results["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 0)
    results["load_after"] = os.getloadavg()
    Path(args.out).write_text(json.dumps(results, indent=2))
    print_table(results)
    shutil.rmtree(work, ignore_errors=True)


def print_table(r: dict) -> None:
    def cell(m, key):
        v = m[key]
        return f"{v['value']:.3f} [{v['ci_low']:.3f}, {v['ci_high']:.3f}]"

    print(f"\nPython docs sample: {r['corpus']['pages']} pages, {r['corpus']['passages']} passages, {r['queries']['test']} test queries")
    print(f"{'system':<34} {'recall@10 [95% CI]':<26} {'nDCG@10 [95% CI]':<26} {'MRR@10':>7}")
    rows = [(f"trainyard {m}", r["trainyard"]["metrics"][m]) for m in ("bm25", "dense", "hybrid")]
    rows += [(f"trainyard {m}, fine-tuned encoder", r["finetuned"]["metrics"][m]) for m in ("dense", "hybrid")]
    for name, m in rows:
        print(f"{name:<34} {cell(m, 'recall@10'):<26} {cell(m, 'ndcg@10'):<26} {m['mrr@10']['value']:>7.3f}")
    peer = r.get("llamaindex", {})
    if "metrics" in peer:
        m = peer["metrics"]
        print(f"{'LlamaIndex defaults (dense)':<34} {cell(m, 'recall@10'):<26} {cell(m, 'ndcg@10'):<26} {m['mrr@10']['value']:>7.3f}")
    else:
        print(f"LlamaIndex: {peer.get('error')}")
    print(json.dumps({k: r[k] for k in ("index_build", "latency", "finetune")}, indent=1)[:3000])


if __name__ == "__main__":
    main()
