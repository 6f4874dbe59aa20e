"""An image classifier scored on a labelled folder (one sub-folder per class), next to the majority-class baseline.

    report = evaluate_folder(model, "labelled/")   # images, accuracy, log loss, recall per class, baseline
"""

from __future__ import annotations

import os

import numpy as np

from trainyard.data.images import load_images
from trainyard.errors import DataError

CHUNK = 256  # images read and scored at a time


def probabilities(model, images) -> np.ndarray:
    """Class probabilities (N, classes) for image paths or an array (N, H, W[, C]), scored CHUNK images at a time."""
    return np.concatenate([model.predict_proba(images[i:i + CHUNK]) for i in range(0, len(images), CHUNK)])


def evaluate_folder(model, folder: str | os.PathLike) -> dict:
    """Scores on a labelled folder (one sub-folder per class): accuracy, log loss, per-class recall, and the images
    whose class the model never saw."""
    from sklearn.metrics import log_loss

    data = load_images(folder)
    known = np.isin(data.y, model.classes_)
    if not known.any():
        raise DataError(f"None of the class folders under {folder} is a class of this model ({', '.join(map(str, model.classes_))}).",
                        "name the sub-folders by the classes the model was trained on.")
    X = [x for x, k in zip(data.X, known) if k] if isinstance(data.X, list) else data.X[known]
    y = data.y[known]
    proba = probabilities(model, X)
    predicted = model.classes_[proba.argmax(axis=1)]
    recall = {str(c): float((predicted[y == c] == c).mean()) for c in model.classes_ if (y == c).any()}
    return {"images": int(len(y)), "accuracy": float((predicted == y).mean()),
            "log_loss": float(log_loss(y, proba, labels=model.classes_)), "recall": recall,
            "unknown_class_images": int((~known).sum()), "majority_baseline": float(max(np.mean(y == c) for c in np.unique(y)))}


def pixel_baseline(X_train, y_train, X_test, y_test, *, size: int = 16, most: int = 5000, seed: int = 0) -> float:
    """Test accuracy of a logistic regression on small grey pixels (size x size, at most `most` training images): the
    simple baseline an image network has to beat, as a table model has to beat its naive baseline."""
    from sklearn.linear_model import LogisticRegression

    from trainyard.data.images import image_batch

    def pixels(X, rows):
        return np.concatenate([image_batch(X, rows[i:i + CHUNK], size=size, channels=1, mean=(0.0,), std=(1.0,), augment=False)
                               .reshape(len(rows[i:i + CHUNK]), -1).numpy() for i in range(0, len(rows), CHUNK)])

    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    rows = np.sort(np.random.default_rng(seed).permutation(len(y_train))[:most])
    model = LogisticRegression(max_iter=500).fit(pixels(X_train, rows), y_train[rows])
    return float((model.predict(pixels(X_test, np.arange(len(y_test)))) == y_test).mean())
