"""Labelling with active learning (docs/labelling.md): projects of items (table rows, texts, images) in the
workspace store, every label with who, when, which queue and which item version; queues that choose what to
label next (random, uncertainty, diversity, a mix, review); a fast model retrained in the background every K
labels; agreement between annotators; Label Studio, CSV and JSONL in and out; a project as a training input."""

from pathlib import Path

PREFIX = "label:"


def is_label_source(data) -> bool:
    """Whether `trainyard train DATA` names a labelling project (`label:NAME`). Light: the CLI asks it at start-up."""
    return isinstance(data, (str, Path)) and str(data).startswith(PREFIX)
