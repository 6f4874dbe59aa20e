"""Cut documents into passages: within a section (never across a heading), on sentence boundaries, with overlap.

Sizes are in words (whitespace-separated). MiniLM reads at most 256 word pieces,
about 190 English words, so the default passage is 180 words and a longer one
is only partly seen by the dense encoder (BM25 sees all of it). A sentence
longer than a passage is cut on words. Each chunk's id is a hash of its source
path, its position in the document and its text: rebuilding the same files
gives the same ids, and a changed passage gets a new one.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass

from trainyard.errors import ConfigError
from trainyard.rag.ingest import Document

_SENTENCE_END = re.compile(r"(?<=[.!?:;])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9`*_])|\n\s*\n")


@dataclass(frozen=True)
class Chunk:
    id: str
    path: str
    title: str
    heading: str
    position: int  # order of the chunk within its document, from 0
    text: str
    page: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def indexed_text(self, headings: bool) -> str:
        """What BM25 and the encoder see: the heading path and the text, or the text alone."""
        if headings and self.heading:
            return f"{self.heading}\n{self.text}"
        return self.text


def chunk_id(path: str, position: int, text: str) -> str:
    return hashlib.sha256(f"{path}\x00{position}\x00{text}".encode()).hexdigest()[:16]


def split_sentences(text: str) -> list[str]:
    """Sentences (and paragraphs): cut after . ! ? : ; followed by a capital or digit, and at blank lines."""
    parts = [p.strip() for p in _SENTENCE_END.split(text)]
    return [p for p in parts if p]


def chunk_document(doc: Document, size: int = 180, overlap: int = 30) -> list[Chunk]:
    if size < 10:
        raise ConfigError(f"--chunk {size} is too small.", "give at least 10 words per passage (default 180).")
    if not 0 <= overlap < size // 2 + 1:
        raise ConfigError(f"--overlap {overlap} must be between 0 and half of --chunk ({size}).", "try --overlap 30.")
    chunks: list[Chunk] = []
    for section in doc.sections:
        for text in _pack(split_sentences(section.text), size, overlap):
            position = len(chunks)
            chunks.append(Chunk(chunk_id(doc.path, position, text), doc.path, doc.title, section.heading, position, text, section.page))
    return chunks


def _pack(sentences: list[str], size: int, overlap: int) -> list[str]:
    """Greedy packing of sentences into passages of at most `size` words; each new passage starts with the last
    whole sentences of the previous one that fit in `overlap` words."""
    pieces: list[list[str]] = []
    for s in sentences:
        words = s.split()
        if len(words) <= size:
            pieces.append(words)
        else:
            pieces.extend(words[i:i + size] for i in range(0, len(words), size - overlap))
    out, current, count = [], [], 0
    for words in pieces:
        if current and count + len(words) > size:
            out.append(" ".join(w for p in current for w in p))
            carried, total = [], 0
            for p in reversed(current):
                if total + len(p) > overlap:
                    break
                carried.insert(0, p)
                total += len(p)
            if total + len(words) > size:
                carried, total = [], 0
            current, count = carried, total
        current.append(words)
        count += len(words)
    if current:
        out.append(" ".join(w for p in current for w in p))
    return out
