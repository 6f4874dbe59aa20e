"""The retrieval index: passages, their unit vectors, a BM25 index, fused by reciprocal rank.

    hits = index.search("rotate the API keys", encoder, k=5, mode="hybrid", path="ops/*.md")

Dense search is an exact inner product over a float32 matrix held in memory
(numpy). Measured at 100k passages x 384 dimensions (docs/rag.md) it takes ~30 ms
a query on this 2-core machine under load (the matrix, 147 MB, is read once per
query: memory bandwidth), p99 ~50 ms: well inside an answer's time, so no
approximate index (HNSW, IVF: extra dependency, lost recall) was added; at around
a million passages one would be. BM25 is `bm25s` (sparse scores, saved as .npy and
JSON). Hybrid ranks by reciprocal rank fusion, sum over the two lists of
1 / (60 + rank), on each list's top `depth` passages. A path glob filters both
lists before ranking. On disk (inside a hashed artifact): chunks.jsonl,
vectors.npy, bm25/ (bm25s's own non-pickle format), and the metadata.
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from trainyard.errors import ConfigError
from trainyard.rag.chunking import Chunk
from trainyard.registry.artifact import register_loader

MODES = ("hybrid", "bm25", "dense")
RRF_K = 60
INDEX_KIND = "rag-index"


@dataclass(frozen=True)
class Hit:
    chunk: Chunk
    score: float  # the fused score (hybrid), BM25 score or cosine
    rank: int
    dense: float | None = None  # cosine of the query and the passage
    bm25: float | None = None

    def to_dict(self) -> dict:
        return {"id": self.chunk.id, "path": self.chunk.path, "title": self.chunk.title, "heading": self.chunk.heading,
                "position": self.chunk.position, "page": self.chunk.page, "text": self.chunk.text, "rank": self.rank,
                "score": round(self.score, 6), "dense": None if self.dense is None else round(self.dense, 6),
                "bm25": None if self.bm25 is None else round(self.bm25, 6)}


def tokenize(texts: list[str]) -> list[list[str]]:
    """Lower-cased words of two or more characters, English stop words removed (bm25s's tokenizer, as strings)."""
    import bm25s

    return bm25s.tokenize(texts, lower=True, stopwords="en", return_ids=False, show_progress=False)


def build_bm25(texts: list[str]):
    import bm25s

    retriever = bm25s.BM25()
    retriever.index(tokenize(texts), show_progress=False)
    return retriever


class RagIndex:
    """Passages + vectors + BM25, searchable; `meta` holds the encoder id, the settings and the calibration."""

    def __init__(self, chunks: list[Chunk], vectors: np.ndarray, bm25, meta: dict):
        if len(chunks) != len(vectors):
            raise ValueError(f"{len(chunks)} chunks but {len(vectors)} vectors")
        self.chunks = chunks
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.bm25 = bm25
        self.meta = meta
        self.by_id = {c.id: c for c in chunks}
        self._paths = np.array([c.path for c in chunks], dtype=object)

    @property
    def encoder_id(self) -> str:
        return self.meta["encoder"]["id"]

    def __len__(self) -> int:
        return len(self.chunks)

    def mask(self, path: str | None) -> np.ndarray | None:
        """Boolean mask of the passages whose source path matches the glob (None: all)."""
        if not path:
            return None
        return _glob_mask(tuple(self._paths), path)

    def dense_scores(self, query_vector: np.ndarray) -> np.ndarray:
        return self.vectors @ np.asarray(query_vector, dtype=np.float32)

    def bm25_scores(self, query: str) -> np.ndarray:
        tokens = [t for t in tokenize([query])[0] if t in self.bm25.vocab_dict]
        if not tokens or not len(self.chunks):
            return np.zeros(len(self.chunks), dtype=np.float32)
        return np.asarray(self.bm25.get_scores(tokens), dtype=np.float32)

    def search(self, query: str, query_vector: np.ndarray | None, *, k: int = 5, mode: str = "hybrid", path: str | None = None,
               depth: int = 50) -> list[Hit]:
        """Top-k passages. `query_vector` (from the index's own encoder) is needed for dense and hybrid."""
        if mode not in MODES:
            raise ConfigError(f"'{mode}' is not a retrieval mode.", f"use one of {', '.join(MODES)}.")
        allowed = self.mask(path)
        dense = self.dense_scores(query_vector) if mode != "bm25" else None
        sparse = self.bm25_scores(query) if mode != "dense" else None
        if mode == "dense":
            order = _top(dense, allowed, k)
            return [Hit(self.chunks[i], float(dense[i]), r + 1, dense=float(dense[i])) for r, i in enumerate(order)]
        if mode == "bm25":
            order = _top(sparse, allowed, k, positive=True)
            return [Hit(self.chunks[i], float(sparse[i]), r + 1, bm25=float(sparse[i])) for r, i in enumerate(order)]
        fused: dict[int, float] = {}
        for scores, positive in ((dense, False), (sparse, True)):
            for rank, i in enumerate(_top(scores, allowed, max(depth, k), positive=positive)):
                fused[int(i)] = fused.get(int(i), 0.0) + 1.0 / (RRF_K + rank + 1)
        best = sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
        return [Hit(self.chunks[i], s, r + 1, dense=float(dense[i]), bm25=float(sparse[i])) for r, (i, s) in enumerate(best)]

    # persistence -------------------------------------------------------------
    def write(self, directory: Path) -> None:
        """chunks.jsonl, vectors.npy and bm25/ into `directory` (the caller hashes them into an artifact)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        with open(directory / "chunks.jsonl", "w", encoding="utf-8") as fh:
            for c in self.chunks:
                fh.write(json.dumps(c.to_dict(), ensure_ascii=False) + "\n")
        np.save(directory / "vectors.npy", self.vectors, allow_pickle=False)
        self.bm25.save(str(directory / "bm25"), allow_pickle=False, show_progress=False)

    @classmethod
    def read(cls, directory: Path, meta: dict) -> "RagIndex":
        import bm25s

        directory = Path(directory)
        with open(directory / "chunks.jsonl", encoding="utf-8") as fh:
            chunks = [Chunk(**json.loads(line)) for line in fh if line.strip()]
        vectors = np.load(directory / "vectors.npy", allow_pickle=False)
        bm25 = bm25s.BM25.load(str(directory / "bm25"), load_corpus=False, allow_pickle=False)
        return cls(chunks, vectors, bm25, meta)


@lru_cache(maxsize=32)
def _glob_mask(paths: tuple, pattern: str) -> np.ndarray:
    return np.fromiter((fnmatch.fnmatchcase(p, pattern) for p in paths), dtype=bool, count=len(paths))


def _top(scores: np.ndarray, allowed: np.ndarray | None, k: int, positive: bool = False) -> np.ndarray:
    """Indices of the k best scores among the allowed passages, best first (BM25: only passages sharing a word)."""
    s = scores if allowed is None else np.where(allowed, scores, -np.inf)
    if positive:
        s = np.where(s > 0, s, -np.inf)
    k = min(k, len(s))
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    part = np.argpartition(-s, k - 1)[:k]
    part = part[np.lexsort((part, -s[part]))]
    return part[np.isfinite(s[part])]


register_loader(INDEX_KIND)(RagIndex.read)
