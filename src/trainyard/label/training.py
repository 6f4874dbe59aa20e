"""A labelling project as a training input: `trainyard train label:NAME`.

Table and text projects become a table (the item's columns and its final label in the project's label column),
trained by the table search (a text column is a text feature there); an image project becomes a folder of class
folders (hard links, or copies across file systems) under the workspace, trained as image classification.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pandas as pd

from trainyard.errors import DataError
from trainyard.label import PREFIX
from trainyard.label.items import image_path
from trainyard.label.project import Project, get_project, items_frame

def training_input(ws, source) -> tuple[Project, pd.DataFrame | Path]:
    """(project, the labelled items as a DataFrame, or an image folder) for `label:NAME`."""
    project = get_project(ws.store, str(source)[len(PREFIX):])
    items = items_frame(ws.store, project.name, ("position", "key", "data", "final"))
    done = items[items["final"].notna()]
    counts = done["final"].value_counts()
    if len(counts) < 2 or counts.min() < 2:
        raise DataError(f"Project {project.name!r} has too few labels to train on: {dict(counts) or 'none'}.",
                        "label at least two items of each of two classes or more (trainyard label " + project.name + ").")
    if project.kind == "image":
        return project, _image_folder(ws, project, done)
    frame = pd.DataFrame(list(done["data"]))
    frame[project.label_column] = done["final"].to_numpy()
    return project, frame


def _image_folder(ws, project: Project, done: pd.DataFrame) -> Path:
    root = ws.home / "label" / project.name / "train"
    tmp = root.with_name(f"train.{os.getpid()}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    for rel, label in zip(done["data"], done["final"]):
        src = image_path(project.source, rel)
        dst = tmp / label / rel.replace("/", "__")
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)
    old = root.with_name("train.old")
    shutil.rmtree(old, ignore_errors=True)
    if root.exists():
        root.rename(old)
    tmp.rename(root)
    shutil.rmtree(old, ignore_errors=True)
    return root
