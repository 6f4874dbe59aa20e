"""Read a team's documents into titled sections: Markdown, reStructuredText, plain text, HTML and PDF.

    docs, problems = read_folder(Path("handbook/"))

Each `Document` keeps its path (relative to the folder), a title and its
sections, each with the heading it sits under, so the chunker can respect them.
A file that cannot be read, or holds no text, becomes a `Problem` naming it:
nothing is skipped silently. PDF text comes from pypdf (one section per page);
HTML from the standard library's parser (script, style and navigation dropped).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

SUFFIXES = {".md": "markdown", ".markdown": "markdown", ".rst": "rst", ".txt": "text", ".text": "text",
            ".html": "html", ".htm": "html", ".pdf": "pdf"}


@dataclass(frozen=True)
class Section:
    heading: str  # "" before the first heading
    text: str
    page: int | None = None  # PDFs: 1-based page number


@dataclass
class Document:
    path: str  # relative to the folder that was indexed, with forward slashes
    title: str
    sections: list[Section]
    content_hash: str  # SHA-256 of the file's bytes: what `--update` compares
    format: str


@dataclass
class Problem:
    path: str
    reason: str


@dataclass
class Ingested:
    documents: list[Document] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def list_files(root: Path) -> list[Path]:
    """Every file under `root` (or `root` itself) with a known suffix, in a stable order; hidden folders skipped."""
    root = Path(root)
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES
                  and not any(part.startswith(".") for part in p.relative_to(root).parts))


def relative_name(path: Path, root: Path) -> str:
    root = Path(root)
    return path.name if root.is_file() else path.relative_to(root).as_posix()


def file_hash(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def read_folder(root: Path, only: set[str] | None = None) -> Ingested:
    """Read every document under `root` (or only the relative paths in `only`)."""
    out = Ingested()
    for path in list_files(root):
        rel = relative_name(path, root)
        if only is not None and rel not in only:
            continue
        try:
            doc = read_document(path, rel)
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            out.problems.append(Problem(rel, f"unreadable: {type(exc).__name__}: {exc}"[:300]))
            continue
        if not any(s.text.strip() for s in doc.sections):
            out.problems.append(Problem(rel, "empty: no text found"))
            continue
        out.documents.append(doc)
    return out


def file_format(path: Path) -> str:
    """markdown, rst, text, html or pdf; `x.rst.txt` and `x.md.txt` (Sphinx's copied sources) by their inner suffix."""
    inner = Path(path.stem).suffix.lower()
    if path.suffix.lower() == ".txt" and inner in (".rst", ".md"):
        return SUFFIXES[inner]
    return SUFFIXES[path.suffix.lower()]


def read_document(path: Path, rel: str) -> Document:
    kind = file_format(path)
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if kind == "pdf":
        sections = _pdf_sections(path)
    else:
        text = raw.decode("utf-8")
        sections = {"markdown": _markdown_sections, "rst": _rst_sections, "text": _text_sections, "html": _html_sections}[kind](text)
    sections = [Section(s.heading, _tidy(s.text), s.page) for s in sections]
    title = next((s.heading for s in sections if s.heading), "") or _first_line(sections) or Path(rel).stem
    return Document(rel, title[:200], [s for s in sections if s.text], digest, kind)


def _tidy(text: str) -> str:
    text = re.sub(r"[ \t\r\f\v]+", " ", text)
    return re.sub(r"\n\s*\n\s*", "\n\n", text).strip()


def _first_line(sections: list[Section]) -> str:
    for s in sections:
        for line in s.text.splitlines():
            if line.strip():
                return line.strip()
    return ""


_MD_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_MD_FENCE = re.compile(r"^\s*(```|~~~)")


def _markdown_sections(text: str) -> list[Section]:
    """Split on ATX headings (# ...) and setext headings (a line underlined by === or ---), outside code fences."""
    lines = text.splitlines()
    sections, heading, body, fenced = [], "", [], False
    i = 0
    while i < len(lines):
        line = lines[i]
        if _MD_FENCE.match(line):
            fenced = not fenced
        m = None if fenced else _MD_HEADING.match(line)
        setext = (not fenced and m is None and i + 1 < len(lines) and line.strip() and not line.lstrip().startswith(("-", "*", ">"))
                  and re.fullmatch(r"\s*(={3,}|-{3,})\s*", lines[i + 1]))
        if m or setext:
            sections.append(Section(heading, "\n".join(body)))
            heading, body = (m.group(2) if m else line.strip()), []
            i += 1 if m else 2
            continue
        body.append(line)
        i += 1
    sections.append(Section(heading, "\n".join(body)))
    return sections


_RST_ADORN = re.compile(r"^([=\-`:'\"~^_*+#<>.])\1{2,}\s*$")


def _rst_sections(text: str) -> list[Section]:
    """Split on reStructuredText section titles: a line underlined (optionally overlined) by a repeated punctuation character."""
    lines = text.splitlines()
    sections, heading, body = [], "", []
    i = 0
    while i < len(lines):
        line = lines[i]
        if (i + 1 < len(lines) and line.strip() and not _RST_ADORN.match(line) and _RST_ADORN.match(lines[i + 1])
                and len(lines[i + 1].rstrip()) >= len(line.rstrip()) - 1):
            if body and _RST_ADORN.match(body[-1]):  # an overline belongs to this title
                body.pop()
            sections.append(Section(heading, "\n".join(body)))
            heading, body = line.strip(), []
            i += 2
            continue
        body.append(line)
        i += 1
    sections.append(Section(heading, "\n".join(body)))
    return sections


def _text_sections(text: str) -> list[Section]:
    return [Section("", text)]


class _HtmlText(HTMLParser):
    SKIP = {"script", "style", "nav", "header", "footer", "noscript", "template"}
    BLOCK = {"p", "div", "li", "br", "tr", "pre", "section", "article", "blockquote", "table", "ul", "ol", "dd", "dt"}
    HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.sections: list[Section] = []
        self.heading, self.body, self.skip, self.in_heading, self.heading_buf, self.title = "", [], 0, False, [], ""
        self.in_title = False

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self.skip += 1
        elif tag in self.HEADINGS:
            self.in_heading, self.heading_buf = True, []
        elif tag == "title":
            self.in_title = True
        elif tag in self.BLOCK:
            self.body.append("\n\n" if tag == "p" else "\n")

    def handle_endtag(self, tag):
        if tag in self.SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in self.HEADINGS and self.in_heading:
            self.sections.append(Section(self.heading, "".join(self.body)))
            self.heading, self.body, self.in_heading = " ".join("".join(self.heading_buf).split()), [], False
        elif tag == "title":
            self.in_title = False

    def handle_data(self, data):
        if self.in_title:
            self.title += data
        elif self.skip:
            return
        elif self.in_heading:
            self.heading_buf.append(data)
        else:
            self.body.append(data)


def _html_sections(text: str) -> list[Section]:
    parser = _HtmlText()
    parser.feed(text)
    parser.close()
    sections = parser.sections + [Section(parser.heading, "".join(parser.body))]
    if parser.title.strip() and not any(s.heading for s in sections):
        sections[0] = Section(parser.title.strip(), sections[0].text)
    return sections


def _pdf_sections(path: Path) -> list[Section]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(str(path))
        title = (reader.metadata.title if reader.metadata and reader.metadata.title else "") or ""
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PdfReadError, KeyError, TypeError, AttributeError, IndexError) as exc:  # what pypdf raises on damaged files
        raise ValueError(f"not a readable PDF ({type(exc).__name__}: {exc})") from exc
    return [Section(title, text, page=i + 1) for i, text in enumerate(pages)]
