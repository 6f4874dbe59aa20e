"""A loaded index with the encoder that built it: the one object `ask`, `evaluate` and the server query through.

    retriever = open_retriever("docs")            # latest version; "docs@3" for another
    hits = retriever.search("rotate API keys", k=5)

The encoder is the one recorded in the index unless another is named; either way its id (label + weights
hash) must equal the index's, or the query is refused: vectors from another encoder are in another space
and their similarities mean nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from trainyard.errors import ConfigError, NotFoundError
from trainyard.rag.encoder import Encoder, resolve_encoder
from trainyard.rag.index import Hit, INDEX_KIND, RagIndex
from trainyard.registry.artifact import load_artifact
from trainyard.registry.workspace import Workspace


class EncoderMismatch(ConfigError):
    """The query encoder is not the one that built the index."""


@dataclass
class Retriever:
    index: RagIndex
    encoder: Encoder
    name: str
    version: int

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def embed(self, texts: list[str]) -> np.ndarray:
        return self.encoder.encode(texts)

    def search(self, query: str, *, k: int = 5, mode: str = "hybrid", path: str | None = None,
               vector: np.ndarray | None = None) -> list[Hit]:
        if mode != "bm25" and vector is None:
            vector = self.embed([query])[0]
        return self.index.search(query, vector, k=k, mode=mode, path=path)

    def best_cosine(self, vector: np.ndarray, path: str | None = None) -> float:
        """The query's best cosine over the (filtered) passages: what the no-answer threshold is compared with."""
        scores = self.index.dense_scores(vector)
        allowed = self.index.mask(path)
        if allowed is not None:
            scores = scores[allowed]
        return float(scores.max()) if len(scores) else -1.0

    @property
    def threshold(self) -> float:
        return float(self.index.meta["calibration"]["threshold"])


def open_retriever(ref: str, *, workspace: str | os.PathLike | None = None, encoder: str | None = None,
                   threads: int | None = None) -> Retriever:
    ws = Workspace.resolve(workspace)
    row = ws.store.resolve_model(ref)
    index, meta = load_artifact(ws.home / row["artifact_path"], row["meta_sha256"])
    if meta.get("kind") != INDEX_KIND:
        raise NotFoundError(f"'{ref}' is a {meta.get('kind', 'table')} model, not a document index.",
                            "build one with `trainyard index NAME FOLDER`; `trainyard models` lists what there is.")
    recorded = meta["encoder"]
    spec = encoder or meta["settings"]["encoder"]
    source = resolve_encoder(spec, ws)
    if source.id != recorded["id"]:
        raise EncoderMismatch(f"Index {row['name']}@{row['version']} was built with the encoder {recorded['label']} ({recorded['id']}), "
                              f"but the query would be encoded by {source.label} ({source.id}).",
                              f"query with the index's own encoder (leave --encoder out), or rebuild the index: "
                              f"`trainyard index {row['name']} {meta.get('source', 'FOLDER')} --encoder {spec}`.")
    return Retriever(index, Encoder(source, threads=threads), row["name"], row["version"])
