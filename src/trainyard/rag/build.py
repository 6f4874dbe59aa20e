"""`trainyard index NAME FOLDER`: read, chunk, embed, index, calibrate and register a new version.

With `update=True` the latest version of NAME is the starting point: files whose content hash is unchanged
keep their passages and vectors, new and changed files are read and embedded, deleted files are dropped;
BM25 (cheap, and its word statistics span the whole corpus) and the calibration are redone. Every build is
a run in the store and a version in the registry (kind "rag-index"), hash-verified when loaded.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from trainyard.errors import ConfigError, DataError, NotFoundError
from trainyard.rag.calibrate import calibrate
from trainyard.rag.chunking import Chunk, chunk_document
from trainyard.rag.encoder import Encoder, resolve_encoder
from trainyard.rag.index import INDEX_KIND, RagIndex, build_bm25
from trainyard.rag.ingest import file_hash, list_files, read_folder, relative_name
from trainyard.registry.artifact import load_artifact, save_artifact
from trainyard.registry.workspace import Workspace


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


@dataclass
class BuildResult:
    name: str
    version: int
    run_id: str
    index: RagIndex
    stats: dict
    problems: list = field(default_factory=list)


def build_index(name: str, folder: Path, settings: IndexSettings = IndexSettings(), *, workspace: str | os.PathLike | None = None,
                update: bool = False, progress: Callable[[str, dict], None] | None = None) -> BuildResult:
    emit = progress or (lambda kind, info: None)
    folder = Path(folder)
    if not folder.exists():
        raise NotFoundError(f"{folder} does not exist.", "pass the folder (or file) holding the documents.")
    ws = Workspace.resolve(workspace)
    previous = _previous(ws, name) if update else None
    if previous is not None:
        settings = _update_settings(previous, settings)
    source = resolve_encoder(settings.encoder, ws)
    encoder = Encoder(source, batch_size=settings.batch_size, threads=settings.threads, device=settings.device)
    run_id = ws.store.create_run(name, kind=INDEX_KIND, task="retrieval", data_source=str(folder.resolve()),
                                 config={"rag": {**asdict(settings), "update": update}})
    with ws.store.running(run_id):
        started = time.perf_counter()
        chunks, vectors, files, stats, problems = _collect(folder, settings, encoder, previous, emit)
        if not chunks:
            raise DataError(f"No readable text in {folder}: " + "; ".join(f"{p.path} ({p.reason})" for p in problems[:5]),
                            "index a folder of .md, .rst, .txt, .html or .pdf files with text in them.")
        texts = [c.indexed_text(settings.headings) for c in chunks]
        t_bm25 = time.perf_counter()
        bm25 = build_bm25(texts)
        stats["bm25_seconds"] = round(time.perf_counter() - t_bm25, 3)
        meta = {"encoder": {"id": source.id, "label": source.label, "dim": int(vectors.shape[1])}, "settings": asdict(settings),
                "documents": files, "source": str(folder.resolve())}
        index = RagIndex(chunks, vectors, bm25, meta)
        emit("stage", {"message": "calibrating the no-answer threshold"})
        meta["calibration"] = calibrate(index, encoder, n=settings.calibration_queries)
        stats["seconds"] = round(time.perf_counter() - started, 3)
        meta["stats"] = stats
        version = register_index(ws, name, run_id, index, problems)
        ws.store.update_run(run_id, status="finished", model_version=version)
    return BuildResult(name, version, run_id, index, stats, problems)


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


def register_index(ws, name: str, run_id: str, index: RagIndex, problems: list) -> int:
    ws.ensure()
    artifact_dir = ws.artifacts / name / run_id
    with tempfile.TemporaryDirectory(dir=ws.home, prefix=".rag-save-") as tmp:
        index.write(Path(tmp))
        files = {p.relative_to(tmp).as_posix(): p for p in Path(tmp).rglob("*") if p.is_file()}
        meta = {"kind": INDEX_KIND, "name": name, "run_id": run_id, "task": "retrieval", **index.meta,
                "problems": [{"path": p.path, "reason": p.reason} for p in problems]}
        digest = save_artifact(None, artifact_dir, meta, extra_files=files)
    stats = index.meta.get("stats", {})
    metrics = {k: stats[k] for k in ("files", "chunks", "embedded", "reused", "chunks_per_second") if stats.get(k) is not None}
    return ws.store.register_model(name, artifact_path=str(artifact_dir.relative_to(ws.home)), meta_sha256=digest, run_id=run_id,
                                   task="retrieval", metric=None, test_score=None, metrics=metrics, family=index.meta["encoder"]["label"])
