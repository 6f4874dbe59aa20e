"""Documents for language modelling: read text files, folders and JSONL; deduplicate; filter for quality.

    docs, report = clean_documents(read_documents(["corpus/"]))

A text file is one document, unless `separator` splits it (fortune files use
"\n%\n"). A JSONL line is one document: its "text" field, or its only string
field. Deduplication drops exact copies (SHA-1 of the text) and near-exact
copies (the same text after lower-casing and removing punctuation and
whitespace). Quality filtering drops documents that are too short, mostly
repeated lines or words, or not text (control bytes, undecodable bytes).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from trainyard.errors import DataError

TEXT_SUFFIXES = {".txt", ".md", ".rst", ".text", ".jsonl", ".json", ".py", ".html", ".tex", ""}
_NORMALISE = re.compile(r"[\W_]+", re.UNICODE)


@dataclass(frozen=True)
class QualityRules:
    min_chars: int = 20
    max_dup_line_fraction: float = 0.3  # of lines (documents with >= 4 lines)
    max_top_word_fraction: float = 0.3  # share of the most common word (documents with >= 50 words)
    max_nontext_fraction: float = 0.01  # control characters and U+FFFD among all characters


@dataclass
class CorpusReport:
    read: int = 0
    kept: int = 0
    chars: int = 0
    dropped: dict = field(default_factory=Counter)

    def to_dict(self) -> dict:
        return {"read": self.read, "kept": self.kept, "chars": self.chars, "dropped": dict(self.dropped)}


def corpus_files(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Every file named, and every text-like file under every folder named, sorted for a stable order."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(f for f in sorted(p.rglob("*")) if f.is_file() and _suffix(f) in TEXT_SUFFIXES and not f.name.startswith("."))
        elif p.is_file():
            files.append(p)
        else:
            raise DataError(f"{p} does not exist.", "pass a text file, a JSONL file or a folder of text files.")
    if not files:
        raise DataError(f"No text files found in {', '.join(map(str, paths))}.", "add .txt, .md, .rst or .jsonl files (optionally .gz).")
    return files


def read_documents(paths: Iterable[str | os.PathLike], separator: str | None = None, text_field: str | None = None) -> Iterator[str]:
    for f in corpus_files(list(paths)):
        if _suffix(f) in (".jsonl", ".json"):
            yield from _jsonl_documents(f, text_field)
            continue
        text = _read_text(f)
        yield from (text.split(separator) if separator else [text])


def clean_documents(docs: Iterable[str], rules: QualityRules = QualityRules(), report: CorpusReport | None = None) -> Iterator[str]:
    """Documents that pass the quality rules and were not seen before (exact or normalised); counts go to `report`."""
    report = report if report is not None else CorpusReport()
    exact, near = set(), set()
    for doc in docs:
        report.read += 1
        doc = doc.strip()
        reason = quality_problem(doc, rules)
        if reason is None:
            h = hashlib.sha1(doc.encode("utf-8", "replace")).digest()
            n = hashlib.sha1(normalise(doc).encode("utf-8", "replace")).digest()
            reason = "duplicate" if h in exact else "near-duplicate" if n in near else None
            exact.add(h)
            near.add(n)
        if reason is not None:
            report.dropped[reason] += 1
            continue
        report.kept += 1
        report.chars += len(doc)
        yield doc


def normalise(text: str) -> str:
    return _NORMALISE.sub("", text.lower())


def quality_problem(doc: str, rules: QualityRules = QualityRules()) -> str | None:
    """Why a document should be dropped ('too-short', 'non-text', 'repetitive'), or None to keep it."""
    if len(doc) < rules.min_chars:
        return "too-short"
    bad = sum(1 for c in doc if c == "\ufffd" or (ord(c) < 32 and c not in "\n\t\r\f"))
    if bad > rules.max_nontext_fraction * len(doc):
        return "non-text"
    lines = [ln.strip() for ln in doc.splitlines() if ln.strip()]
    if len(lines) >= 4 and 1 - len(set(lines)) / len(lines) > rules.max_dup_line_fraction:
        return "repetitive"
    words = doc.lower().split()
    if len(words) >= 50 and Counter(words).most_common(1)[0][1] / len(words) > rules.max_top_word_fraction:
        return "repetitive"
    return None


def _suffix(path: Path) -> str:
    suffixes = path.suffixes
    if suffixes and suffixes[-1] == ".gz":
        return suffixes[-2] if len(suffixes) > 1 else ""
    return path.suffix


def _read_text(path: Path) -> str:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        raw = fh.read()
    return raw.decode("utf-8", errors="replace")


def _jsonl_documents(path: Path, text_field: str | None) -> Iterator[str]:
    for number, row in iter_jsonl(path):
        yield document_text(row, text_field, f"{path} line {number}")


def iter_jsonl(path: Path) -> Iterator[tuple[int, object]]:
    """(line number, parsed object) for every non-blank line; a clear error for a broken one."""
    for number, line in enumerate(_read_text(path).splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError:
            raise DataError(f"{path} line {number} is not valid JSON.", "fix or remove that line; every line must be one JSON object.") from None


def document_text(row, text_field: str | None, where: str) -> str:
    if isinstance(row, str):
        return row
    if not isinstance(row, dict):
        raise DataError(f"{where} is not a JSON object.", "write one object per line, e.g. {\"text\": \"...\"}.")
    if text_field:
        if text_field not in row:
            raise DataError(f"{where} has no field '{text_field}'.", f"its fields are {sorted(row)}.")
        return str(row[text_field])
    if "text" in row:
        return str(row["text"])
    strings = [k for k, v in row.items() if isinstance(v, str)]
    if len(strings) == 1:
        return row[strings[0]]
    raise DataError(f"{where} has no 'text' field and {len(strings)} string fields {strings}.", "name the field with --text-field.")
