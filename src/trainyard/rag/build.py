"""`trainyard index NAME FOLDER`: read, chunk, embed, index, calibrate and register a new version (`IndexPlan`).

With `update=True` the latest version of NAME is the starting point: files whose content hash is unchanged
keep their passages and vectors, new and changed files are read and embedded, deleted files are dropped;
BM25 (cheap, and its word statistics span the whole corpus) and the calibration are redone. Every build is
a run of the run driver and a version in the registry (kind "rag-index"), hash-verified when loaded:

    result = execute(IndexPlan("docs", "handbook/", IndexSettings()), Workspace.resolve())   # runs.driver.execute
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from trainyard.errors import ConfigError, DataError, NotFoundError
from trainyard.rag.calibrate import calibrate
from trainyard.rag.chunking import Chunk, chunk_document
from trainyard.rag.encoder import Encoder, resolve_encoder
from trainyard.rag.index import INDEX_KIND, RagIndex, build_bm25
from trainyard.rag.ingest import file_hash, list_files, read_folder, relative_name
from trainyard.registry.artifact import load_artifact
from trainyard.registry.plan import Registered, RunContext, RunResult, RunSpec


@dataclass(frozen=True)
class IndexSettings:
    """How an index is built (the `trainyard index` flags), declared once."""

    encoder: str = "minilm"  # minilm, a Hugging Face directory, or a registered encoder's ref
    chunk: int = 180  # words per passage (MiniLM reads about 190 words)
    overlap: int = 30  # words repeated from the end of the previous passage in a section
    headings: bool = True  # prepend each passage's section heading to the text that is indexed
    batch_size: int = 64  # texts per encoder batch
    threads: int | None = None  # torch threads for encoding (default: torch's own)
    device: str = "cpu"
    calibration_queries: int = 200


class IndexPlan:
    """`trainyard index NAME FOLDER [--update]` as a plan of the run driver (runs/driver.py: the run row, its status and
    the registration are the driver's): prepare reads, chunks and embeds, fit builds BM25 and calibrates, evaluate
    reports the build's figures (there is no held-out data to score an index on: `trainyard evaluate --queries` does
    that), register writes the hashed artifact and the version."""

    def __init__(self, name: str, folder: Path, settings: IndexSettings = IndexSettings(), *, update: bool = False):
        self.name, self.folder, self.settings, self.update = name, Path(folder), settings, update
        if not self.folder.exists():
            raise NotFoundError(f"{self.folder} does not exist.", "pass the folder (or file) holding the documents.")

    @classmethod
    def of_run(cls, run: dict) -> "IndexPlan":
        """The plan of a recorded run (`trainyard resume`: a build is redone from the start; embeddings are not checkpointed)."""
        config = dict(run["config"]["rag"])
        update = config.pop("update", False)
        return cls(run["name"], Path(run["data_source"]), IndexSettings(**config), update=update)

    def spec(self) -> RunSpec:
        return RunSpec(self.name, INDEX_KIND, "retrieval", None, data_source=str(self.folder.resolve()),
                       config={"rag": {**asdict(self.settings), "update": self.update}})

    def prepare(self, run: RunContext) -> None:
        self.started = time.perf_counter()
        previous = _previous(run.ws, self.name) if self.update else None
        if previous is not None:
            self.settings = _update_settings(previous, self.settings)
        s = self.settings
        self.source = resolve_encoder(s.encoder, run.ws)
        self.encoder = Encoder(self.source, batch_size=s.batch_size, threads=s.threads, device=s.device)
        self.chunks, self.vectors, self.files, self.stats, self.problems = _collect(self.folder, s, self.encoder, previous, run.emit)
        if not self.chunks:
            raise DataError(f"No readable text in {self.folder}: " + "; ".join(f"{p.path} ({p.reason})" for p in self.problems[:5]),
                            "index a folder of .md, .rst, .txt, .html or .pdf files with text in them.")

    def fit(self, run: RunContext) -> None:
        s, t0 = self.settings, time.perf_counter()
        bm25 = build_bm25([c.indexed_text(s.headings) for c in self.chunks])
        self.stats["bm25_seconds"] = round(time.perf_counter() - t0, 3)
        meta = {"encoder": {"id": self.source.id, "label": self.source.label, "dim": int(self.vectors.shape[1])},
                "settings": asdict(s), "documents": self.files, "source": str(self.folder.resolve()),
                "problems": [{"path": p.path, "reason": p.reason} for p in self.problems]}
        self.index = RagIndex(self.chunks, self.vectors, bm25, meta)
        run.emit("stage", {"message": "calibrating the no-answer threshold"})
        meta["calibration"] = calibrate(self.index, self.encoder, n=s.calibration_queries)
        self.stats["seconds"] = round(time.perf_counter() - self.started, 3)
        meta["stats"] = self.stats

    def evaluate(self, run: RunContext) -> dict[str, float]:
        figures = {k: self.stats[k] for k in ("files", "chunks", "embedded", "reused", "chunks_per_second", "seconds")
                   if self.stats.get(k) is not None}
        return {**figures, "calibration_balanced_accuracy": self.index.meta["calibration"].get("balanced_accuracy")}

    def register(self, run: RunContext, metrics: dict[str, float]) -> Registered:
        run.ws.ensure()
        with tempfile.TemporaryDirectory(dir=run.ws.home, prefix=".rag-save-") as tmp:
            self.index.write(Path(tmp))
            files = {p.relative_to(tmp).as_posix(): p for p in Path(tmp).rglob("*") if p.is_file()}
            version = run.register(None, {"kind": INDEX_KIND, "task": "retrieval", **self.index.meta}, task="retrieval", metric=None,
                                   metrics={k: v for k, v in metrics.items() if v is not None}, family=self.source.label,
                                   test_score=None, extra_files=files)
        return Registered(version, None, self.source.label)

    def result(self, run: RunContext, registered: Registered, metrics: dict[str, float]) -> RunResult:
        return RunResult(run.run_id, self.name, registered.version, INDEX_KIND, "retrieval", None, metrics, model=self.index,
                         family=self.source.label, notes=[f"{p.path}: {p.reason}" for p in self.problems],
                         seconds=self.stats["seconds"])


def _previous(ws, name: str) -> RagIndex:
    try:
        row = ws.store.resolve_model(name)
    except NotFoundError:
        raise NotFoundError(f"There is no index named '{name}' to update.", f"build it first: `trainyard index {name} FOLDER`.") from None
    index, meta = load_artifact(ws.home / row["artifact_path"], row["meta_sha256"])
    if meta.get("kind") != INDEX_KIND:
        raise ConfigError(f"'{name}' is a {meta.get('kind', 'table')} model, not a document index.", "pick another name for the index.")
    return index


def _update_settings(previous: RagIndex, given: IndexSettings) -> IndexSettings:
    """An update keeps the chunking and the encoder of the version it starts from (else its vectors would not fit)."""
    kept = dict(previous.meta["settings"])
    if given.encoder != IndexSettings.encoder and given.encoder != kept["encoder"]:
        raise ConfigError(f"--update cannot change the encoder ({kept['encoder']} -> {given.encoder}): the stored vectors come from {kept['encoder']}.",
                          "rebuild without --update to switch encoders.")
    return IndexSettings(**{**kept, "batch_size": given.batch_size, "threads": given.threads, "device": given.device})


def _collect(folder: Path, s: IndexSettings, encoder: Encoder, previous: RagIndex | None, emit):
    """(chunks, vectors, {path: {hash, chunks}}, stats, problems): unchanged files reused from `previous`."""
    paths = {relative_name(p, folder): p for p in list_files(folder)}
    old_files = previous.meta["documents"] if previous is not None else {}
    hashes = {}
    for rel, p in paths.items():
        try:
            hashes[rel] = file_hash(p)
        except OSError:
            hashes[rel] = None
    unchanged = {rel for rel, h in hashes.items() if rel in old_files and old_files[rel]["hash"] == h}
    emit("stage", {"message": f"reading {len(paths) - len(unchanged)} files"})
    ingested = read_folder(folder, only=set(paths) - unchanged)
    new_chunks = [c for doc in ingested.documents for c in chunk_document(doc, s.chunk, s.overlap)]
    if new_chunks:
        encoder.model  # load the weights before the clock starts: throughput is of embedding alone
    t0 = time.perf_counter()
    emit("stage", {"message": f"embedding {len(new_chunks)} passages"})
    new_vectors = encoder.encode([c.indexed_text(s.headings) for c in new_chunks],
                                 progress=lambda done, total: emit("embed", {"done": done, "total": total}))
    embed_seconds = time.perf_counter() - t0
    kept_chunks, kept_rows = [], []
    if previous is not None:
        for i, c in enumerate(previous.chunks):
            if c.path in unchanged:
                kept_chunks.append(c)
                kept_rows.append(i)
    dim = new_vectors.shape[1] if len(new_chunks) else (previous.vectors.shape[1] if previous is not None else encoder.dim)
    kept_vectors = previous.vectors[kept_rows] if previous is not None else np.zeros((0, dim), np.float32)
    chunks: list[Chunk] = kept_chunks + new_chunks
    vectors = np.concatenate([kept_vectors, new_vectors.reshape(-1, dim)]) if chunks else np.zeros((0, dim), np.float32)
    order = sorted(range(len(chunks)), key=lambda i: (chunks[i].path, chunks[i].position))
    chunks, vectors = [chunks[i] for i in order], vectors[order]
    files = {}
    for c in chunks:
        files.setdefault(c.path, {"hash": hashes.get(c.path), "chunks": 0})["chunks"] += 1
    read = {d.path for d in ingested.documents}
    stats = {"files": len(files), "chunks": len(chunks), "embedded": len(new_chunks), "reused": len(kept_chunks),
             "added": sorted(read - set(old_files)), "changed": sorted(read & set(old_files)),
             "removed": sorted(set(old_files) - set(paths)), "problems": len(ingested.problems),
             "embed_seconds": round(embed_seconds, 3),
             "chunks_per_second": round(len(new_chunks) / embed_seconds, 2) if new_chunks and embed_seconds > 0 else None}
    return chunks, vectors, files, stats, ingested.problems
