"""The King James Bible as the language-model quality checks use it (docs/lm.md, "Quality checks on real data").

    bible gen1:1-rev22:21 > kjv.txt          # apt-get install bible-kjv
    python benchmarks/lm/quality/kjv_sets.py kjv.txt -o kjv/

Writes into the output folder:
- kjv-train.txt: Genesis 1 to Acts 25, one chapter per document (separated by a blank line), one verse per line,
  without the book/chapter headings and verse numbers (3.7 MB);
- kjv-heldout.txt: Acts 26 to Revelation 22 in the same form (books the pre-trained model never sees, 0.4 MB);
- sft-train.jsonl / sft-heldout.jsonl (3,000 / 150 rows): 'Which book of the Bible is this verse from?' with the
  verse quoted, answered with the book's name, from verses of the training books (the held-out rows are other verses);
- dpo-train.jsonl / dpo-heldout.jsonl (1,000 / 150 rows): the same question, chosen = the right book, rejected = a
  random other book of the training books (the held-out rows are verses in none of the other files).
"""

from __future__ import annotations

import argparse
import json
import random
import re
from pathlib import Path


def chapters(text: str) -> list[tuple[str, int, list[str]]]:
    """(book, chapter, verses) from the output of `bible`: headings 'Genesis 1', verses '  1 In the beginning ...'
    wrapped over several lines."""
    out: list[tuple[str, int, list[str]]] = []
    for line in text.split("\n"):
        heading = re.match(r"^(\S.*\S) (\d+)$", line)
        if heading and not line.startswith(" "):
            out.append((heading.group(1), int(heading.group(2)), []))
        elif out and line.strip():
            verse = re.match(r"^\s+\d+ (.*)$", line)
            if verse:
                out[-1][2].append(verse.group(1).strip())
            else:
                out[-1][2][-1] += " " + line.strip()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("kjv", type=Path)
    ap.add_argument("-o", "--out", type=Path, default=Path("."))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    chs = chapters(args.kjv.read_text())
    cut = next(i for i, (book, n, _) in enumerate(chs) if (book, n) == ("Acts", 26))

    def text(part):
        return "\n\n".join("\n".join(verses) for _, _, verses in part) + "\n"

    (args.out / "kjv-train.txt").write_text(text(chs[:cut]))
    (args.out / "kjv-heldout.txt").write_text(text(chs[cut:]))

    verses = [(book, v) for book, _, vs in chs[:cut] for v in vs if 40 <= len(v) <= 200]
    books = sorted({b for b, _ in verses})
    rng = random.Random(0)
    rng.shuffle(verses)
    held, train = verses[:300], verses[300:4300]

    def question(verse: str) -> str:
        return f'Which book of the Bible is this verse from?\n"{verse}"'

    def pair(book: str, verse: str) -> dict:
        return {"prompt": question(verse), "chosen": book, "rejected": rng.choice([x for x in books if x != book])}

    sets = {"sft-train.jsonl": [{"prompt": question(v), "response": b} for b, v in train[:3000]],
            "sft-heldout.jsonl": [{"prompt": question(v), "response": b} for b, v in held[:150]],
            "dpo-train.jsonl": [pair(b, v) for b, v in train[3000:4000]],
            "dpo-heldout.jsonl": [pair(b, v) for b, v in held[150:300]]}
    for name, rows in sets.items():
        (args.out / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    print(f"{len(chs)} chapters, training books to Acts 25 ({cut} chapters), {len(books)} books in the question sets")


if __name__ == "__main__":
    main()
