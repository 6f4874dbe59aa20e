"""Images in, predictions out: scoring image files, folders and uploads with a registered image classifier.

    files = image_files("test_images/")          # data.images: a file, or every image under a folder (sorted)
    frame = predict_images(model, files)         # path, prediction, proba_<class> ... (one row per image)

A broken or unreadable image is refused with its path (exit 2), never a traceback.
"""

from __future__ import annotations

from pathlib import Path

from trainyard.evaluation.images import probabilities
from trainyard.models.image import ImageClassifier


def is_image_model(model) -> bool:
    return isinstance(model, ImageClassifier)


def predict_images(model, files: list[str], *, names: list[str] | None = None):
    """A DataFrame: path (or `names`), prediction, and one proba_<class> column per class."""
    import pandas as pd

    proba = probabilities(model, files)
    frame = pd.DataFrame({"path": names or files, "prediction": model.classes_[proba.argmax(axis=1)]})
    for i, c in enumerate(model.classes_):
        frame[f"proba_{c}"] = proba[:, i]
    return frame


def write_predictions(frame, output: Path) -> None:
    suffix = Path(output).suffix.lower()
    if suffix == ".parquet":
        frame.to_parquet(output, index=False)
    elif suffix == ".jsonl":
        frame.to_json(output, orient="records", lines=True)
    else:
        frame.to_csv(output, index=False)
