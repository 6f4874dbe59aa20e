"""The reference an image classifier is monitored against: each image described by a few numbers, profiled like
the columns of a table, so `trainyard monitor NAME --data FOLDER` reuses the table's drift tests and domain check.

The numbers per image: `width` and `height` (the file's, or the array's), `brightness` and `contrast` (mean and
standard deviation of its grey pixels, 0-1), and `embedding_0..7`: the network's own view of the image (the input of
its last linear layer) projected on the 8 principal directions of the training images' views. A camera that moved,
new lighting or a new kind of object shows in the first four; a change the network notices, in the embedding.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from trainyard.data.profile import FORMAT, PROFILE_FILE, SAMPLE_FILE, profile_frame
from trainyard.evaluation.images import probabilities
from trainyard.models.image import ImageClassifier

EMBEDDING_DIMS = 8
PROFILED_IMAGES = 1000  # training images described for the reference (a random sample of larger sets)
STATS = ("width", "height", "brightness", "contrast")


def pixel_stats(X) -> pd.DataFrame:
    """width, height, brightness and contrast of each image (paths or an array (N, H, W[, C]) of 0-255 values)."""
    from PIL import Image  # an image model's extra (trainyard[dl]); table monitoring runs without it

    rows = []
    for i in range(len(X)):
        if isinstance(X, (list, tuple)):
            with Image.open(X[i]) as im:
                grey = np.asarray(im.convert("L"), dtype=np.float32)
        else:
            image = np.asarray(X[i], dtype=np.float32)
            grey = image.mean(axis=-1) if image.ndim == 3 else image
        rows.append((grey.shape[1], grey.shape[0], grey.mean() / 255, grey.std() / 255))
    return pd.DataFrame(rows, columns=list(STATS), dtype=float)


def projection_of(views: np.ndarray) -> dict:
    """The mean and the first principal directions of the training images' views (JSON-ready)."""
    mean = views.mean(axis=0)
    _, _, vt = np.linalg.svd(views - mean, full_matrices=False)
    return {"mean": mean.tolist(), "components": vt[:EMBEDDING_DIMS].tolist()}


def describe(model: ImageClassifier, X, projection: dict) -> pd.DataFrame:
    """One row per image: its pixel statistics and its projected embedding."""
    stats = pixel_stats(X)
    views = model.embed(X)
    coords = (views - np.asarray(projection["mean"])) @ np.asarray(projection["components"]).T
    for k in range(coords.shape[1]):
        stats[f"embedding_{k}"] = coords[:, k]
    return stats


def predictions_frame(model: ImageClassifier, X) -> pd.DataFrame:
    """The monitored outputs, named as a table model's are: `predicted` and `proba_<class>`."""
    proba = probabilities(model, X)
    out = pd.DataFrame({"predicted": model.classes_[proba.argmax(axis=1)].astype(str)})
    shown = model.classes_[1:] if len(model.classes_) == 2 else model.classes_
    for c in shown[:20]:
        out[f"proba_{c}"] = proba[:, int(np.flatnonzero(model.classes_ == c)[0])]
    return out


def write_image_reference(directory: Path, model: ImageClassifier, train_images, test_images, seed: int = 0) -> dict[str, Path]:
    """profile.json and the row sample for `monitor`, as `data.profile.write_reference` writes them for tables."""
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(train_images), min(PROFILED_IMAGES, len(train_images)), replace=False))
    sample = [train_images[i] for i in rows] if isinstance(train_images, (list, tuple)) else np.asarray(train_images[rows])
    projection = projection_of(model.embed(sample))
    described = describe(model, sample, projection)
    preds = predictions_frame(model, test_images)
    kinds = {c: "numeric" for c in described.columns}
    pred_kinds = {c: ("categorical" if c == "predicted" else "numeric") for c in preds.columns}
    profile = {
        "format": FORMAT, "created_at": datetime.now(timezone.utc).isoformat(), "n_rows": len(described),
        "task": "image-classification", "target": None, "columns": profile_frame(described, kinds),
        "predictions": {"n_rows": len(preds), "columns": profile_frame(preds, pred_kinds)},
        "images": {"projection": projection, "described": f"{len(described)} of {len(train_images)} training images"},
    }
    directory = Path(directory)
    (directory / "reference").mkdir(parents=True, exist_ok=True)
    (directory / PROFILE_FILE).write_text(json.dumps(profile, separators=(",", ":")))
    described.to_parquet(directory / SAMPLE_FILE, index=False)
    return {PROFILE_FILE: directory / PROFILE_FILE, SAMPLE_FILE: directory / SAMPLE_FILE}
