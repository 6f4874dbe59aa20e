"""Images in, predictions out: scoring image files, folders and uploads with a registered image classifier.

    files = image_files("test_images/")          # a file, or every image under a folder (sorted, recursive)
    frame = predict_images(model, files)         # path, prediction, proba_<class> ... (one row per image)

A broken or unreadable image is refused with its path (exit 2), never a traceback.
"""

from __future__ import annotations

import os
from pathlib import Path

from trainyard.data.images import IMAGE_EXTENSIONS
from trainyard.errors import DataError, NotFoundError
from trainyard.evaluation.images import probabilities
from trainyard.models.image import ImageClassifier


def is_image_model(model) -> bool:
    return isinstance(model, ImageClassifier)


def image_files(path: str | os.PathLike) -> list[str]:
    """`path` itself (one image), or every image file under the folder `path`, sorted."""
    path = Path(path)
    if not path.exists():
        raise NotFoundError(f"No such file or folder: {path}.", "give an image file or a folder of images.")
    if path.is_file():
        if path.suffix.lower() not in IMAGE_EXTENSIONS:
            raise DataError(f"{path.name} is not an image file this model reads.", f"give {', '.join(sorted(IMAGE_EXTENSIONS))} files.")
        return [str(path)]
    files = sorted(str(f) for f in path.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise DataError(f"No images found under {path}.", f"put image files ({', '.join(sorted(IMAGE_EXTENSIONS))}) in the folder.")
    return files


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
