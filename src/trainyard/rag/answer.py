"""Answers from retrieved passages, with citations, or "no relevant passage found".

Without a generator the answer is extractive: the sentences of the top passages closest to the question
(cosine of their vectors), each followed by its passage id. With a generator (any callable prompt -> text
pieces; the CLI and the server wrap a trainyard language model in one) the prompt holds the passages with
their ids and asks for an answer that cites them; ids the model cites that were not in the prompt are
reported, not trusted. If the question's best cosine over the index is below the index's calibrated
threshold (see calibrate.py), nothing is generated and the answer says so.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from trainyard.rag.chunking import split_sentences
from trainyard.rag.index import Hit

NO_ANSWER = "no relevant passage found"
RELATIVE_FLOOR = 0.2  # an extractive answer keeps sentences within this cosine of the best one
Generator = Callable[[str], Iterator[str]]  # prompt -> pieces of text as they are produced; an optional
# `fits(prompt) -> bool` attribute lets the answer drop its lowest-ranked passages until the prompt fits the model
_CITATION = re.compile(r"\[([0-9a-f]{16}|\d{1,2})\]")
_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset("a an and are as at be by do does for from how i in is it of on or that the this to was what when where which who why with you your can".split())


@dataclass
class Answer:
    question: str
    text: str
    answered: bool
    best_cosine: float
    threshold: float
    passages: list[Hit]
    method: str  # "extractive", "generated" or "none"
    citations: list[str] = field(default_factory=list)  # passage ids cited, in order of first citation
    invalid_citations: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        by_id = {h.chunk.id: h.chunk for h in self.passages}
        return {"question": self.question, "answer": self.text, "answered": self.answered, "method": self.method,
                "best_cosine": round(self.best_cosine, 4), "threshold": self.threshold,
                "citations": [{"id": i, "path": by_id[i].path, "title": by_id[i].title, "heading": by_id[i].heading,
                               "page": by_id[i].page} for i in self.citations if i in by_id],
                "invalid_citations": self.invalid_citations, "passages": [h.to_dict() for h in self.passages]}


def build_prompt(question: str, hits: list[Hit]) -> str:
    blocks = [f"[{h.chunk.id}] ({h.chunk.path}{' - ' + h.chunk.heading if h.chunk.heading else ''})\n{h.chunk.text}" for h in hits]
    return ("Answer the question using only the passages below. After each sentence, cite the passage it comes from "
            "by its id in square brackets, like [" + (hits[0].chunk.id if hits else "0123456789abcdef") + "]. "
            "If the passages do not answer it, say so.\n\n" + "\n\n".join(blocks) + f"\n\nQuestion: {question}\nAnswer:")


def ask(retriever, question: str, *, k: int = 5, mode: str = "hybrid", path: str | None = None, threshold: float | None = None,
        generator: Generator | None = None, sentences: int = 3) -> Answer:
    """Retrieve, decide whether anything relevant was found, answer (collecting a streamed generation)."""
    events = stream_ask(retriever, question, k=k, mode=mode, path=path, threshold=threshold, generator=generator, sentences=sentences)
    for kind, payload in events:
        if kind == "done":
            return payload
    raise RuntimeError("stream_ask ended without an answer")


def stream_ask(retriever, question: str, *, k: int = 5, mode: str = "hybrid", path: str | None = None, threshold: float | None = None,
               generator: Generator | None = None, sentences: int = 3) -> Iterator[tuple[str, object]]:
    """Events: ("passages", [Hit]), then ("text", piece) as the answer is produced, then ("done", Answer)."""
    vector = retriever.embed([question])[0]
    hits = retriever.search(question, k=k, mode=mode, path=path, vector=vector)
    best = retriever.best_cosine(vector, path)
    limit = retriever.threshold if threshold is None else float(threshold)
    yield "passages", hits
    if not hits or best < limit:
        yield "text", NO_ANSWER
        yield "done", Answer(question, NO_ANSWER, False, best, limit, hits, "none")
        return
    if generator is None:
        text, cited = extractive(retriever, vector, hits, sentences)
        yield "text", text
        yield "done", Answer(question, text, True, best, limit, hits, "extractive", cited)
        return
    prompt, fits = build_prompt(question, hits), getattr(generator, "fits", None)
    while fits is not None and len(hits) > 1 and not fits(prompt):  # drop the lowest-ranked passages until it fits
        hits = hits[:-1]
        prompt = build_prompt(question, hits)
    pieces = []
    for piece in generator(prompt):
        pieces.append(piece)
        yield "text", piece
    text = "".join(pieces).strip()
    cited, invalid = parse_citations(text, hits)
    yield "done", Answer(question, text, True, best, limit, hits, "generated", cited, invalid)


def extractive(retriever, vector: np.ndarray, hits: list[Hit], sentences: int = 3) -> tuple[str, list[str]]:
    """The `sentences` sentences of the passages closest to the question, each with its [passage id]."""
    candidates = [(s, h.chunk.id) for h in hits for s in split_sentences(h.chunk.text) if len(s.split()) >= 3]
    if not candidates:
        candidates = [(h.chunk.text, h.chunk.id) for h in hits]
    scores = retriever.embed([s for s, _ in candidates]) @ vector
    chosen, seen = [], set()
    floor = float(scores.max()) - RELATIVE_FLOOR
    for i in np.argsort(-scores, kind="stable"):
        if chosen and scores[i] < floor:  # far less related than the best sentence: leave it out
            break
        text, cid = candidates[int(i)]
        key = " ".join(_WORD.findall(text.lower()))
        if key in seen:
            continue
        seen.add(key)
        chosen.append((text, cid))
        if len(chosen) >= sentences:
            break
    cited = list(dict.fromkeys(cid for _, cid in chosen))
    return "\n".join(f"{text} [{cid}]" for text, cid in chosen), cited


def parse_citations(text: str, hits: list[Hit]) -> tuple[list[str], list[str]]:
    """(ids cited that were in the prompt, in order; citations that name no passage given). [n] means the n-th passage."""
    ids = [h.chunk.id for h in hits]
    valid, invalid = [], []
    for token in _CITATION.findall(text):
        cid = ids[int(token) - 1] if token.isdigit() and 1 <= int(token) <= len(ids) else token
        (valid if cid in ids else invalid).append(cid)
    return list(dict.fromkeys(valid)), list(dict.fromkeys(invalid))


def content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP and len(w) > 1}


def supported_share(answer: Answer, min_overlap: float = 0.5) -> float | None:
    """Share of the answer's sentences that cite a passage given to it and share at least `min_overlap` of their
    content words with the passages they cite (None when nothing was answered)."""
    if not answer.answered:
        return None
    by_id = {h.chunk.id: h.chunk.text for h in answer.passages}
    parts = [p for p in re.split(r"(?<=\])\s*\n|(?<=[.!?])\s+(?=[A-Z])", answer.text) if p.strip()]
    if not parts:
        return 0.0
    good = 0
    for part in parts:
        cited, _ = parse_citations(part, answer.passages)
        words = content_words(_CITATION.sub(" ", part))
        source = set().union(*(content_words(by_id[c]) for c in cited)) if cited else set()
        if cited and words and len(words & source) / len(words) >= min_overlap:
            good += 1
    return good / len(parts)
