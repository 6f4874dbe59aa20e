"""Small labelling projects for the tests: a wine table with some labels given, texts with an id column, images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

WORDS = {"billing": ["invoice", "charged", "refund", "payment", "bill"], "bug": ["crash", "error", "freeze", "broken", "fails"],
         "other": ["hello", "thanks", "question", "weather", "lunch"]}


def wine_csv(path: Path, given: int = 30) -> Path:
    from sklearn.datasets import load_wine

    df = load_wine(as_frame=True).frame.sample(frac=1.0, random_state=0).reset_index(drop=True)
    df["target"] = df["target"].map({0: "a", 1: "b", 2: "c"}).astype(object)
    df.loc[given:, "target"] = None
    df.to_csv(path, index=False)
    return path


def wine_truth() -> list[str]:
    from sklearn.datasets import load_wine

    df = load_wine(as_frame=True).frame.sample(frac=1.0, random_state=0).reset_index(drop=True)
    return df["target"].map({0: "a", 1: "b", 2: "c"}).tolist()


def tickets_csv(path: Path, n: int = 90, seed: int = 0) -> tuple[Path, list[str]]:
    rng = np.random.default_rng(seed)
    classes = list(WORDS)
    truth = [classes[i % 3] for i in range(n)]
    bodies = [" ".join(rng.choice(WORDS[c], 3)) + f" ticket {i}" for i, c in enumerate(truth)]
    pd.DataFrame({"id": [f"t{i}" for i in range(n)], "body": bodies}).to_csv(path, index=False)
    return path, truth


def image_folder(root: Path, n: int = 12) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(n):
        sub = root / "ok" if i < n // 3 else root / "dent" if i < 2 * n // 3 else root
        sub.mkdir(parents=True, exist_ok=True)
        pixels = (rng.random((20, 20)) * (60 if i < n // 3 else 250)).astype(np.uint8)
        Image.fromarray(pixels).save(sub / f"img{i}.png")
    return root
