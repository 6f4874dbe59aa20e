"""Peak memory of reading and tokenising a large text CSV: the token store (streamed, memory-mapped) vs the previous path.

    PYTHONPATH=src python benchmarks/training/text_memory.py --rows 200000 --rounds 2

Contenders, each in its own fresh Python process (peak RSS is per process), run in alternation:
- previous path: what `trainyard train texts.csv --text-col text` did before the token store: the whole table
  read with `load_table`, every text a Python string, tokenised into Python lists of ids (`tokenizer(...)
  ["input_ids"]`), lengths taken from the lists for bucketing;
- token store: `trainyard.data.texts.load_texts` (what `train` runs now): the file streamed in chunks of 20,000
  rows, each chunk tokenised and appended to a flat uint16 `ids.bin`, memory-mapped afterwards.
Both then build the first 50 length-bucketed, padded training batches with `models.text.token_batches`.
The measure is the child's peak resident memory (`ru_maxrss`) minus the same process's RSS after importing
the modules both paths use and loading the tokenizer (the common baseline), and the wall time of reading + tokenising.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORDS = ("the a film movie story acting plot was were is great terrible boring wonderful long short scene music "
         "characters director script ending beginning slow fast funny sad loved hated enjoyed watched again never "
         "always really quite very not too much little best worst actor actress camera dialogue").split()


def make_csv(path: Path, rows: int, seed: int = 0) -> None:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    n_words = rng.integers(10, 120, size=rows)
    vocab = np.array(WORDS)
    texts = [" ".join(vocab[rng.integers(0, len(vocab), size=k)]) for k in n_words]
    pd.DataFrame({"id": np.arange(rows), "text": texts, "label": rng.choice(["pos", "neg", "mid"], size=rows)}).to_csv(path, index=False)


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def child(contender: str, path: str, max_length: int) -> None:
    import numpy as np
    import torch

    from trainyard.models.text import load_tokenizer, token_batches

    import trainyard.data.load  # noqa: F401  everything either path imports, so the baseline holds the same code
    import trainyard.data.texts  # noqa: F401
    import trainyard.lm.shards  # noqa: F401
    import trainyard.serve.batch  # noqa: F401
    import trainyard.engine.batches  # noqa: F401

    tokenizer = load_tokenizer("minilm")
    tokenizer(["warm up"], truncation=True, max_length=max_length)
    base = rss_mb()
    with tempfile.TemporaryDirectory() as cache:
        start = time.perf_counter()
        if contender == "previous":
            from trainyard.data.load import load_table

            df = load_table(path)
            texts = df["text"].fillna("").astype(str).tolist()
            y = df["label"].to_numpy()
            ids = tokenizer(texts, truncation=True, max_length=max_length, padding=False)["input_ids"]
            n_tokens = sum(len(i) for i in ids)
        else:
            from trainyard.data.texts import load_texts

            table = load_texts(path, "label", "text", tokenizer=tokenizer, max_length=max_length, cache_dir=cache)
            ids, y = table.texts, table.y
            n_tokens = int(ids.lengths.sum())
        seconds = time.perf_counter() - start
        labels = torch.from_numpy(np.searchsorted(np.unique(y), y))
        for _, _batch in zip(range(50), token_batches(ids, labels, 32, tokenizer.pad_token_id, prefetch=False).epoch(0, seed=0)):
            pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"contender": contender, "peak_mb": round(peak - base, 1), "seconds": round(seconds, 2), "rows": len(y),
                      "tokens": n_tokens}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--child", nargs=2, metavar=("CONTENDER", "CSV"))
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.max_length)
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "texts.csv"
        make_csv(path, args.rows)
        size_mb = path.stat().st_size / 2**20
        print(f"{args.rows:,} texts, {size_mb:.0f} MB CSV, max_length {args.max_length}; load {os.getloadavg()[0]:.1f}", flush=True)
        results: dict[str, list[dict]] = {"previous": [], "token store": []}
        for r in range(args.rounds):
            for contender in ("previous", "token store") if r % 2 == 0 else ("token store", "previous"):
                out = subprocess.run([sys.executable, __file__, "--child", contender.split()[0], str(path), "--max-length", str(args.max_length)],
                                     capture_output=True, text=True, check=True, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
                results[contender].append(json.loads(out.stdout.strip().splitlines()[-1]))
                print(f"  round {r + 1} {contender}: {results[contender][-1]}", flush=True)
    previous = min(r["peak_mb"] for r in results["previous"])
    print(f"\n| path | peak memory above baseline (MB, min of {args.rounds}) | vs previous | read + tokenise (s, median) |")
    print("|---|---:|---:|---:|")
    for name, runs in results.items():
        peak = min(r["peak_mb"] for r in runs)
        seconds = sorted(r["seconds"] for r in runs)[len(runs) // 2]
        print(f"| {name} | {peak:,.0f} | {peak / previous:.2f}x | {seconds:.1f} |")


if __name__ == "__main__":
    main()
