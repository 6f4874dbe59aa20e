"""Small synthetic image sets shared by the neural-run and dashboard tests."""

from __future__ import annotations

import numpy as np


def make_images(n=240, size=16, seed=0):
    """Three classes told apart by where the bright band is (top rows, bottom rows, middle columns): flips keep them apart."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    X = (rng.random((n, size, size)) * 60).astype(np.uint8)
    half = size // 2
    for i in range(n):
        if y[i] == 0:
            X[i, :half] += 150
        elif y[i] == 1:
            X[i, half:] += 150
        else:
            X[i, :, size // 3: 2 * size // 3] += 150
    return X, np.array(["top", "bottom", "middle"])[y]
