"""What is wrong with a text table file, said precisely: its encoding, the line with the wrong number of fields,
the JSON Lines line that does not parse.

These checks run before reading (the encoding, from the first bytes) or only once reading has failed or looks
wrong (the line scans), so a good file pays for four bytes and nothing else.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from trainyard.errors import DataError

COMPRESSED = {".gz", ".bz2", ".zip", ".xz", ".zst"}
# Byte-order marks, longest first (UTF-32's little-endian mark starts with UTF-16's).
BOMS = (
    (b"\xff\xfe\x00\x00", "UTF-32 (little-endian)"), (b"\x00\x00\xfe\xff", "UTF-32 (big-endian)"),
    (b"\xff\xfe", "UTF-16 (little-endian)"), (b"\xfe\xff", "UTF-16 (big-endian)"),
)


def detect_wide_encoding(head: bytes) -> str | None:
    """'UTF-16 (little-endian)' and the like for text stored two or four bytes a character, else None."""
    for bom, name in BOMS:
        if head.startswith(bom):
            return name
    sample = head[: len(head) - len(head) % 2]
    if len(sample) >= 8 and b"\x00" in sample:
        even, odd = sample[0::2], sample[1::2]
        if odd.count(0) >= 0.9 * len(odd) and even.count(0) < 0.1 * len(even):
            return "UTF-16 (little-endian)"
        if even.count(0) >= 0.9 * len(even) and odd.count(0) < 0.1 * len(odd):
            return "UTF-16 (big-endian)"
    return None


def check_encoding(path: Path) -> None:
    """A DataError naming the encoding of a UTF-16/UTF-32 text file (trainyard reads UTF-8, falling back to Latin-1)."""
    if path.suffix.lower() in COMPRESSED:
        return
    with open(path, "rb") as fh:
        head = fh.read(4096)
    found = detect_wide_encoding(head)
    if found:
        raise DataError(
            f"'{path.name}' is text encoded as {found}; trainyard reads UTF-8 (or Latin-1) text.",
            f"save it as UTF-8, e.g. `iconv -f {found.split()[0]} -t UTF-8 '{path.name}' > utf8.{path.name.rsplit('.', 1)[-1]}` "
            "or choose 'CSV UTF-8' when exporting from a spreadsheet.",
        )


def first_ragged_line(path: Path, sep: str) -> tuple[int, int, int] | None:
    """(line number, fields on that line, fields in the header) of the first row whose field count differs, or None."""
    if path.suffix.lower() in COMPRESSED:
        return None
    with open(path, newline="", encoding="utf-8", errors="replace") as fh:
        reader = csv.reader(fh, delimiter=sep, skipinitialspace=True)
        header = next(reader, None)
        if header is None:
            return None
        for row in reader:
            if row and len(row) != len(header):
                return reader.line_num, len(row), len(header)
    return None


def ragged_error(path: Path, sep: str) -> DataError | None:
    found = first_ragged_line(path, sep)
    if found is None:
        return None
    line, fields, wanted = found
    more = "more" if fields > wanted else "fewer"
    return DataError(
        f"Line {line} of '{path.name}' has {fields} fields but the header names {wanted} columns ({more} fields than columns); "
        "read as is, its values would shift into the wrong columns.",
        "fix that line (quote values that contain the delimiter, remove extra delimiters, or add the missing fields).",
    )


def check_not_shifted(path: Path, sep: str) -> None:
    """pandas makes the first column the index when the first data row has more fields than the header, shifting
    every value to the right (later rows with extra fields fail to parse): refuse such a file, naming the line."""
    if path.suffix.lower() in COMPRESSED:
        return
    with open(path, newline="", encoding="utf-8", errors="replace") as fh:
        reader = csv.reader(fh, delimiter=sep, skipinitialspace=True)
        header = next(reader, None)
        first = next(reader, None)
        while first is not None and not first:  # blank lines
            first = next(reader, None)
    if header is not None and first is not None and len(first) > len(header):
        raise ragged_error(path, sep)


def bad_json_line(path: Path) -> tuple[int, str] | None:
    """(line number, parser message) of the first JSON Lines line that is not one JSON object, or None."""
    if path.suffix.lower() in COMPRESSED:
        return None
    with open(path, encoding="utf-8", errors="replace") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except ValueError as exc:
                return number, str(exc)
            if not isinstance(value, dict):
                return number, f"a JSON {type(value).__name__}, not an object"
    return None


def json_lines_error(path: Path) -> DataError | None:
    found = bad_json_line(path)
    if found is None:
        return None
    line, message = found
    return DataError(
        f"Line {line} of '{path.name}' is not a JSON object: {message[:160]}.",
        "fix or remove that line: JSON Lines holds one complete JSON object per line.",
    )
