"""The peer: LlamaIndex with its defaults (SentenceSplitter 1024/200 tokens, in-memory vector store, top-10
cosine) and the same offline MiniLM through llama-index-embeddings-huggingface. Run by bench.py in its own
venv: `peer_llamaindex.py WORKDIR MINILM_DIR`; reads peer_docs.jsonl and peer_queries.jsonl, prints one JSON
line. A retrieved node counts as relevant when it contains the first 60 characters of one of the relevant
section's passages (LlamaIndex's nodes are not trainyard's passages, so ids cannot be compared)."""

import json
import sys
import time
from pathlib import Path

import numpy as np


def bootstrap(values, n_boot=1000, seed=0):
    values = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(n_boot, len(values)))].mean(axis=1)
    return {"value": float(values.mean()), "ci_low": float(np.percentile(means, 2.5)), "ci_high": float(np.percentile(means, 97.5))}


def main():
    import torch

    torch.set_num_threads(1)
    work, model = Path(sys.argv[1]), sys.argv[2]
    from llama_index.core import Document, Settings, VectorStoreIndex
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

    Settings.llm = None
    Settings.embed_model = HuggingFaceEmbedding(model_name=model, device="cpu")
    docs = [Document(text=row["text"], metadata={"path": row["path"]}) for row in map(json.loads, (work / "peer_docs.jsonl").read_text().splitlines())]
    queries = [json.loads(line) for line in (work / "peer_queries.jsonl").read_text().splitlines()]
    w, c = time.perf_counter(), time.process_time()
    index = VectorStoreIndex.from_documents(docs)
    build_wall, build_cpu = time.perf_counter() - w, time.process_time() - c
    retriever = index.as_retriever(similarity_top_k=10)
    recall, mrr, ndcg, ms = [], [], [], []
    for q in queries:
        t = time.perf_counter()
        nodes = retriever.retrieve(q["query"])
        ms.append(1000 * (time.perf_counter() - t))
        hits = [any(p in " ".join(n.node.get_content().split()) for p in q["probes"]) for n in nodes]
        first = next((i for i, h in enumerate(hits) if h), None)
        recall.append(float(any(hits)))  # a section is found when any retrieved node holds it
        mrr.append(0.0 if first is None else 1.0 / (first + 1))
        ndcg.append(0.0 if first is None else 1.0 / np.log2(first + 2))  # one relevant unit (the section): DCG of its first hit
    print(json.dumps({"nodes": len(index.docstore.docs), "build_wall_s": round(build_wall, 1), "build_cpu_s": round(build_cpu, 1),
                      "query_p50_ms": round(float(np.percentile(ms, 50)), 2), "query_p99_ms": round(float(np.percentile(ms, 99)), 2),
                      "metrics": {"recall@10": bootstrap(recall), "mrr@10": bootstrap(mrr), "ndcg@10": bootstrap(ndcg)}}))


if __name__ == "__main__":
    main()
