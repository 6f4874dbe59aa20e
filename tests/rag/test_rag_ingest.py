"""Reading and chunking documents: every format, headings kept, stable ids, problems named (no encoder needed)."""

from __future__ import annotations

from raghelp import handbook  # noqa: F401  (a fixture)

from trainyard.rag.chunking import chunk_document, split_sentences
from trainyard.rag.ingest import Document, Section, read_folder


def test_every_format_is_read_with_its_sections_and_problems_are_named(handbook):
    got = read_folder(handbook)
    docs = {d.path: d for d in got.documents}
    assert set(docs) == {"ops/keys.md", "hr/vacation.rst", "canteen.html", "plants.txt", "ops/backups.pdf"}
    assert [s.heading for s in docs["ops/keys.md"].sections] == ["Rotating API keys", "Revoking a key"]
    assert [s.heading for s in docs["hr/vacation.rst"].sections] == ["Vacation policy", "Requesting leave"]
    html = docs["canteen.html"]
    assert [s.heading for s in html.sections] == ["Canteen hours", "Payment"]
    assert "script text" not in " ".join(s.text for s in html.sections) and "menu links" not in " ".join(s.text for s in html.sections)
    pdf = docs["ops/backups.pdf"]
    assert "backups run every night" in pdf.sections[0].text and pdf.sections[0].page == 1
    assert docs["plants.txt"].title.startswith("Office plants")
    problems = {p.path: p.reason for p in got.problems}
    assert set(problems) == {"empty.md", "broken.txt", "ops/scan.pdf"}
    assert problems["ops/scan.pdf"].startswith("unreadable") and "PDF" in problems["ops/scan.pdf"]
    assert problems["empty.md"].startswith("empty") and problems["broken.txt"].startswith("unreadable")


def test_chunks_respect_sections_sentences_and_overlap():
    sentences = [f"Sentence number {i} has exactly seven words." for i in range(30)]
    doc = Document("a.md", "A", [Section("First", " ".join(sentences)), Section("Second", "Short tail section here.")], "h", "markdown")
    chunks = chunk_document(doc, size=40, overlap=14)
    first = [c for c in chunks if c.heading == "First"]
    assert all(len(c.text.split()) <= 40 for c in chunks)
    assert chunks[-1].heading == "Second" and chunks[-1].text == "Short tail section here."  # never merged across a heading
    for a, b in zip(first, first[1:]):  # each passage starts with whole sentences from the end of the one before
        assert b.text.split(". ")[0] + "." in a.text
        assert a.text.endswith(".") and b.text.startswith("Sentence")
    assert [c.position for c in chunks] == list(range(len(chunks)))
    again = chunk_document(doc, size=40, overlap=14)
    assert [c.id for c in again] == [c.id for c in chunks]  # stable
    changed = Document("a.md", "A", [doc.sections[0], Section("Second", "Another tail.")], "h2", "markdown")
    ids = [c.id for c in chunk_document(changed, size=40, overlap=14)]
    assert ids[:-1] == [c.id for c in chunks[:-1]] and ids[-1] != chunks[-1].id


def test_a_sentence_longer_than_a_passage_is_cut_on_words():
    doc = Document("b.txt", "B", [Section("", " ".join(f"w{i}" for i in range(100)))], "h", "text")
    chunks = chunk_document(doc, size=30, overlap=5)
    assert all(len(c.text.split()) <= 30 for c in chunks)
    assert {w for c in chunks for w in c.text.split()} == {f"w{i}" for i in range(100)}


def test_sentence_splitting():
    assert split_sentences("One thing. Two things! Three? e.g. lower case stays.\n\nNew para") == [
        "One thing.", "Two things!", "Three? e.g. lower case stays.", "New para"]
