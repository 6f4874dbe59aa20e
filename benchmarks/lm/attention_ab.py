"""The trainyard loop against the bare bf16-autocast loop, with and without fp32 attention, in more alternating rounds.

bench.py's five-way comparison runs 3 rounds; on a loaded machine that does not resolve differences of a few
percent. This runs only the three bf16 contenders, more rounds, and reports the median steady-state CPU seconds
per step: the trainyard loop (its defaults: bf16 autocast with attention kept in fp32 on a CPU), the bare loop
under plain bf16 autocast, and the bare loop under bf16 autocast plus trainyard's Fp32CpuAttention (to separate
that change from the rest of the loop).

    python benchmarks/lm/attention_ab.py --corpus kjv.txt --rounds 6 --steps 10
"""

from __future__ import annotations

import os
import sys
import tempfile
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import bench  # noqa: E402


def main():
    p = bench.arguments(steps=10, rounds=6)
    a = p.parse_args()
    import torch

    from trainyard.engine.runtime import Fp32CpuAttention

    torch.set_num_threads(a.threads)
    work = Path(a.work or tempfile.mkdtemp(prefix="lm-bench-"))
    tok, tokens = bench.corpus_tokens(a.corpus, a.vocab, work)

    def bare_fp32_attention(*args):
        with Fp32CpuAttention():
            return bench.run_bare(*args, bf16=True)

    runners = {"trainyard loop (defaults)": bench.run_trainyard, "bare loop, bf16 autocast": partial(bench.run_bare, bf16=True),
               "bare loop, bf16 autocast + fp32 attention": bare_fp32_attention}
    names, cpu = list(runners), {k: [] for k in runners}
    print(f"load average {os.getloadavg()[0]:.1f}")
    for r in range(a.rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            cpu[name].append(runners[name](tok, tokens, a, work).steady()[1])
            print(f"round {r + 1} {name:<42} CPU s/step {cpu[name][-1]:.3f} (load {os.getloadavg()[0]:.1f})", flush=True)
    base = np.median(cpu[names[0]])
    print(f"\n| contender | median CPU s/step | tokens per CPU-s | trainyard / this |\n|---|---|---|---|")
    for name, values in cpu.items():
        med = np.median(values)
        print(f"| {name} | {med:.3f} | {a.batch * a.context / med:.0f} | {med / base:.2f}x |")


if __name__ == "__main__":
    main()
