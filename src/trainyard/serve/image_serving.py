"""Image classifiers behind HTTP: upload images to the predict route (multipart), get classes and probabilities.

    curl -F file=@cat.png -F file=@dog.jpg http://127.0.0.1:8000/v1/models/pets/predict

answers {"model": "pets", "version": 3, "predictions": [{"file": "cat.png", "prediction": "cat",
"probabilities": {"cat": 0.93, "dog": 0.07}}, ...]}. Each upload is decoded and resized exactly as a file
given to `trainyard predict` is, so both give the same answer. A part that is not an image is answered 422
with its file name. The serving app (`trainyard.serve.app`) hands the references that name image models here.
"""

import io  # no `from __future__ import annotations`: FastAPI reads the route's Request annotation at runtime
import threading

import numpy as np

from trainyard.errors import ConfigError
from trainyard.registry.artifact import load_artifact, read_meta
from trainyard.registry.store import parse_ref

MAX_FILES = 256


def is_image_model(ws, ref: str) -> bool:
    row = ws.store.resolve_model(ref)
    return read_meta(ws.home / row["artifact_path"]).get("task") == "image-classification"


def add_image_models(app, ws, refs: list[str]) -> dict:
    """Load each image model (hashes verified) and add its upload route; returns {name: (model, version)}."""
    models = {}
    for ref in refs:
        name = parse_ref(ref)[0]
        if name in models:
            raise ConfigError(f"Image model '{name}' is given twice.", "serve one reference per model name.")
        row = ws.store.resolve_model(ref)
        model, _ = load_artifact(ws.home / row["artifact_path"], row["meta_sha256"])
        models[name] = (model, row["version"])
    for name, (model, version) in models.items():
        _add_route(app, name, model, version)
    return models


class BadImage(Exception):
    pass


def decode(data: bytes, filename: str, model) -> np.ndarray:
    """One upload as uint8 pixels (H, W) or (H, W, 3) at the model's size, read as `_read_file` reads a file."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            im = im.convert("RGB" if model.channels_ == 3 else "L").resize((model.image_size_, model.image_size_), Image.BILINEAR)
            return np.asarray(im, dtype=np.uint8)
    except Exception as exc:  # any decoder failure is the client's upload, never a server error
        raise BadImage(f"'{filename}' is not an image this server can read ({type(exc).__name__})") from None


def _add_route(app, name: str, model, version: int) -> None:
    from fastapi import HTTPException, Request
    from starlette.concurrency import run_in_threadpool

    lock = threading.Lock()  # one batch at a time per model: scoring uses every core already

    def score(pixels: np.ndarray, files: list[str]) -> dict:
        with lock:
            proba = model.predict_proba(pixels)
        classes = [str(c) for c in model.classes_]
        return {"model": name, "version": version, "predictions": [
            {"file": f, "prediction": classes[int(p.argmax())], "probabilities": dict(zip(classes, map(float, p)))} for f, p in zip(files, proba)]}

    @app.post(f"/v1/models/{name}/predict", summary=f"Classify uploaded images with '{name}' (multipart: one or more 'file' parts)")
    async def predict(request: Request):
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            raise HTTPException(415, "send the images as multipart/form-data, one 'file' part per image (curl -F file=@cat.png)")
        try:
            form = await request.form(max_files=MAX_FILES, max_fields=10)
        except Exception as exc:
            raise HTTPException(400, f"could not read the upload: {exc}") from None
        uploads = [u for u in form.getlist("file") if not isinstance(u, str)]
        if not uploads:
            raise HTTPException(422, "no image: send one or more parts named 'file' (curl -F file=@cat.png)")
        files = [u.filename or f"file{i}" for i, u in enumerate(uploads)]
        try:
            pixels = np.stack([decode(await u.read(), f, model) for u, f in zip(uploads, files)])
        except BadImage as exc:
            raise HTTPException(422, str(exc)) from None
        return await run_in_threadpool(score, pixels, files)
