"""Small image sets: the CNN's defaults against a logistic regression on the same pixels (issue 17, item 1).

    PYTHONPATH=src python benchmarks/training/small_images.py [--scale 4] [--epochs 2 8 10] [--mobilenet]

600 of scikit-learn's 8x8 digits, upscaled `scale` times, 420 to train (the CNN holds 10% of those out for
validation) and 180 to test, stratified; one torch thread. Prints one row per setting: test accuracy, the
validation loss per epoch, wall and CPU seconds, and the pixel baseline.
"""

import argparse
import time

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from trainyard.models.image import ImageClassifier


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--epochs", type=int, nargs="+", default=[2, 8])
    ap.add_argument("--mobilenet", action="store_true", help="MobileNetV2 transfer (defaults: fine-tuned; and frozen) instead of the CNN")
    args = ap.parse_args()
    torch.set_num_threads(1)
    d = load_digits()
    X = np.kron((d.images[:600] / 16 * 255).astype(np.uint8), np.ones((1, args.scale, args.scale), dtype=np.uint8))
    y = d.target[:600].astype(str)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    flat = lambda a: a.reshape(len(a), -1) / 255  # noqa: E731
    baseline = LogisticRegression(max_iter=2000).fit(flat(Xtr), ytr).score(flat(Xte), yte)
    print(f"| setting | epochs | test accuracy | pixel logistic regression | val loss by epoch | wall s | CPU s |")
    print("|---|---:|---:|---:|---|---:|---:|")
    settings = {"defaults": {}, "--no-augment": {"augment": False}, "old defaults (batch 64, flips)": {"batch_size": 64, "flips": True}}
    if args.mobilenet:
        settings = {"mobilenetv2 defaults (fine-tuned)": {"arch": "mobilenetv2"},
                    "mobilenetv2 frozen (the old default)": {"arch": "mobilenetv2", "finetune": False}}
    for epochs in args.epochs:
        for name, params in settings.items():
            model = ImageClassifier(**params)
            family_lr = {"lr": 1e-3} if params.get("arch") == "mobilenetv2" else {}  # as the mobilenetv2 family sets it
            model.loop = model.default_loop(epochs=epochs, **family_lr)
            wall, cpu = time.perf_counter(), time.process_time()
            model.fit(Xtr, ytr)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            losses = " ".join(f"{h['val_loss']:.2f}" for h in model.history_)
            print(f"| {name} | {epochs} | {model.score(Xte, yte):.3f} | {baseline:.3f} | {losses} | {wall:.0f} | {cpu:.0f} |", flush=True)


if __name__ == "__main__":
    main()
