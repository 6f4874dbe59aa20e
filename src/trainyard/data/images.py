"""Image data: a folder per class, idx files (MNIST format) or .npz arrays; batches built on demand.

`load_images(path)` returns an `ImageSet` whose `X` is either a list of file
paths (decoded batch by batch, so a folder never has to fit in memory) or an
array (`np.memmap` for uncompressed idx files). `image_batch` turns the rows of
one batch into a float tensor, with optional flip/crop augmentation written
with torch (no torchvision).
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trainyard.errors import DataError, NotFoundError

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.int16, 0x0C: np.int32, 0x0D: np.float32, 0x0E: np.float64}


@dataclass
class ImageSet:
    X: list | np.ndarray  # file paths, or an array (N, H, W) / (N, H, W, C)
    y: np.ndarray
    source: str

    def __len__(self) -> int:
        return len(self.y)


def load_images(path, *, split: str = "train") -> ImageSet:
    """A folder of class folders, a folder holding idx files, an idx file pair's images file, or an .npz file."""
    path = Path(path)
    if not path.exists():
        raise NotFoundError(f"No such file or folder: {path}.", "check the path (a folder with one sub-folder per class, idx files, or an .npz file).")
    if path.is_file() and path.suffix == ".npz":
        return _npz(path)
    if path.is_file() and "idx" in path.name:
        return _idx_pair(path)
    if path.is_dir():
        idx = sorted(p for p in path.iterdir() if "images-idx" in p.name and p.name.startswith(("train" if split == "train" else "t10k", split)))
        if idx:
            return _idx_pair(idx[0])
        return _folder(path)
    raise DataError(f"Cannot read images from '{path.name}'.", "give a folder with one sub-folder per class, an idx images file, or an .npz file with arrays x and y.")


def _folder(root: Path) -> ImageSet:
    paths, labels = [], []
    for class_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(str(f) for f in class_dir.rglob("*") if f.suffix.lower() in IMAGE_EXTENSIONS)
        paths += files
        labels += [class_dir.name] * len(files)
    if not paths:
        raise DataError(f"No images found under {root}.", f"put images ({', '.join(sorted(IMAGE_EXTENSIONS))}) in one sub-folder per class, e.g. {root}/cat/1.png.")
    if len(set(labels)) < 2:
        raise DataError(f"{root} holds only one class ('{labels[0]}').", "add a sub-folder of images for each class (at least two).")
    return ImageSet(paths, np.asarray(labels), str(root))


def read_idx(path: Path) -> np.ndarray:
    """An idx array (MNIST / Fashion-MNIST format); memory-mapped when the file is not compressed."""
    path = Path(path)
    if path.suffix == ".gz":
        raw = gzip.open(path).read()
        header = raw[:4]
    else:
        with open(path, "rb") as fh:
            header = fh.read(4)
        raw = None
    if header[:2] != b"\x00\x00" or header[2] not in IDX_DTYPES:
        raise DataError(f"{path.name} is not an idx file.", "give MNIST-format idx files (e.g. train-images-idx3-ubyte[.gz]).")
    ndim = header[3]
    dims_raw = raw[4:4 + 4 * ndim] if raw is not None else open(path, "rb").read(4 + 4 * ndim)[4:]
    shape = tuple(int.from_bytes(dims_raw[4 * i:4 * i + 4], "big") for i in range(ndim))
    dtype = np.dtype(IDX_DTYPES[header[2]]).newbyteorder(">")
    offset = 4 + 4 * ndim
    if raw is None:
        return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape)
    return np.frombuffer(raw, dtype=dtype, offset=offset).reshape(shape)


def _idx_pair(images: Path) -> ImageSet:
    labels = images.with_name(images.name.replace("images-idx3", "labels-idx1"))
    if not labels.exists():
        raise NotFoundError(f"Found {images.name} but not its labels file {labels.name}.", "keep the images and labels idx files side by side.")
    X, y = read_idx(images), np.asarray(read_idx(labels))
    if len(X) != len(y):
        raise DataError(f"{images.name} has {len(X)} images but {labels.name} has {len(y)} labels.", "use a matching pair of idx files.")
    return ImageSet(X, y, str(images))


def _npz(path: Path) -> ImageSet:
    data = np.load(path)
    keys = set(data.files)
    x_key = next((k for k in ("x", "X", "images", "x_train") if k in keys), None)
    y_key = next((k for k in ("y", "Y", "labels", "y_train") if k in keys), None)
    if x_key is None or y_key is None:
        raise DataError(f"{path.name} holds arrays {sorted(keys)}, not images and labels.", "save it with np.savez(path, x=images, y=labels).")
    X, y = data[x_key], data[y_key]
    if X.ndim not in (3, 4) or len(X) != len(y):
        raise DataError(f"{path.name}: x has shape {X.shape} and y {y.shape}.", "x must be (N, H, W) or (N, H, W, C) with one label per image.")
    return ImageSet(X, y, str(path))


def image_batch(X, rows: np.ndarray, *, size: int | None, channels: int, mean, std, augment: bool, generator=None, flips: bool = True):
    """The images `rows` of X as a float tensor (B, C, H, W), normalised, optionally cropped (and flipped, with `flips`)."""
    import torch
    import torch.nn.functional as F

    if isinstance(X, (list, tuple)):
        batch = torch.stack([_read_file(X[i], size, channels) for i in rows])
    else:
        arr = take_rows(X, rows)
        t = torch.from_numpy(np.ascontiguousarray(arr))
        # (N, H, W, C) bytes to NCHW while they are bytes: float math on a permuted view is ~2x the CPU time
        t = t.unsqueeze(1) if t.dim() == 3 else t.permute(0, 3, 1, 2).contiguous()
        t = t.float() / 255.0 if arr.dtype == np.uint8 else t.float()
        if t.shape[1] != channels:
            t = t.expand(-1, channels, -1, -1) if t.shape[1] == 1 else t.mean(1, keepdim=True)
        if size and t.shape[-1] != size:
            t = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False)
        batch = t
    if augment:
        batch = flip_and_crop(batch, generator, flips=flips)
    m = torch.tensor(mean, dtype=batch.dtype).view(1, -1, 1, 1)
    s = torch.tensor(std, dtype=batch.dtype).view(1, -1, 1, 1)
    return ((batch - m) / s).contiguous()


def take_rows(X, rows: np.ndarray) -> np.ndarray:
    """X[rows] as an array; a memory map is read in sorted order (sequential disk access), then put back in order."""
    rows = np.asarray(rows)
    if not isinstance(X, np.memmap):
        return np.asarray(X[rows])
    order = np.argsort(rows, kind="stable")
    out = np.empty((len(rows), *X.shape[1:]), dtype=X.dtype)
    out[order] = X[rows[order]]
    return out


def flip_and_crop(batch, generator=None, pad: int | None = None, flips: bool = True):
    """Random horizontal flips (unless `flips` is False) and random crops after reflection padding (pad = 1/8 of the side)."""
    import torch
    import torch.nn.functional as F

    n, _, h, w = batch.shape
    flip = torch.rand(n, generator=generator) < 0.5  # drawn either way: the same crops with and without flips
    if flips:
        batch = torch.where(flip.view(-1, 1, 1, 1), batch.flip(3), batch)
    pad = pad if pad is not None else max(1, h // 8)
    padded = F.pad(batch, (pad, pad, pad, pad), mode="reflect")
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    rows = (dy.view(-1, 1) + torch.arange(h).view(1, -1))  # (n, h)
    cols = (dx.view(-1, 1) + torch.arange(w).view(1, -1))  # (n, w)
    idx_n = torch.arange(n).view(-1, 1, 1)
    return padded.permute(0, 2, 3, 1)[idx_n, rows.view(n, h, 1), cols.view(n, 1, w)].permute(0, 3, 1, 2)


def _read_file(path: str, size: int | None, channels: int):
    import torch
    from PIL import Image

    try:
        with Image.open(path) as im:
            im = im.convert("RGB" if channels == 3 else "L")
            if size:
                im = im.resize((size, size), Image.BILINEAR)
            arr = np.asarray(im, dtype=np.uint8)
    except OSError as exc:
        raise DataError(f"Cannot read the image {path}: {exc}.", "remove or replace the broken file.") from None
    t = torch.from_numpy(arr.copy()).float() / 255.0
    return t.unsqueeze(0) if t.dim() == 2 else t.permute(2, 0, 1)


def mirror_safe(X, rows: np.ndarray, labels, *, sample: int = 600, seed: int = 0, keep: float = 0.75) -> tuple[bool, dict]:
    """Whether horizontal flips keep the labels of the images `rows` of X (labelled `labels`), judged from the data: a
    nearest-class-mean classifier on (up to `sample`) small grey copies scores the images, then their mirror images.
    Flips are safe when the mirror images keep at least `keep` of the accuracy: Fashion-MNIST keeps 87% (0.69 -> 0.60:
    shoes face the other way but stay shoes), scikit-learn's digits keep 33% (0.91 -> 0.30: a mirrored 2 is no longer
    a 2), and flipping those would teach the network wrong labels.
    Returns (safe, {"accuracy": ..., "mirrored_accuracy": ...})."""
    rows, labels = np.asarray(rows), np.asarray(labels)
    pick = np.random.default_rng(seed).permutation(len(rows))[:sample]
    pixels = image_batch(X, rows[pick], size=16, channels=1, mean=(0.0,), std=(1.0,), augment=False).numpy()
    labels = labels[pick]
    classes = np.unique(labels)
    flat, mirrored = pixels.reshape(len(pixels), -1), pixels[..., ::-1].reshape(len(pixels), -1)
    means = np.stack([flat[labels == c].mean(axis=0) for c in classes])

    def accuracy(images):
        distances = ((images[:, None, :] - means[None]) ** 2).sum(axis=2)
        return float((classes[distances.argmin(axis=1)] == labels).mean())

    scores = {"accuracy": accuracy(flat), "mirrored_accuracy": accuracy(mirrored)}
    return scores["mirrored_accuracy"] >= keep * scores["accuracy"], scores


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
