"""Flushing a freshly written folder to disk before the rename that publishes it (checkpoints of every loop)."""

from __future__ import annotations

import os
from pathlib import Path


def fsync_tree(path: Path) -> None:
    """Flush every file directly in `path`, then the folder itself."""
    for p in path.iterdir():
        with open(p, "rb") as fh:
            os.fsync(fh.fileno())
    fsync_dir(path)


def fsync_dir(path: Path) -> None:
    """Flush a folder's entries (POSIX; elsewhere a no-op)."""
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
