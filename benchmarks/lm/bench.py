"""Language-model benchmarks, every peer in the same run on the same machine.

1. Pre-training tokens/s of one ~10M-parameter GPT-2-style model on the same
   packed windows of a real corpus, five contenders: the trainyard loop
   (trainyard.engine.loop.fit with its defaults: precision 'auto', which is bf16
   autocast on CPUs that compute bf16 natively; checkpoints and metric logging
   on), a bare hand-written PyTorch loop (fused AdamW, clipping, nothing else) in
   fp32 and with bf16 autocast, and Hugging Face Trainer with its defaults (fp32,
   fused AdamW) and with bf16=True. Rounds alternate the order; the median round
   of each is reported (and every round printed).
2. Peak memory of instruction tuning the same model fully vs with LoRA (r=16)
   for a few steps, each in a fresh process: the resident-set high-water mark,
   reset just before training (Linux /proc/self/clear_refs), next to the RSS
   before training.
3. Generation tokens/s, greedy, with and without the KV cache.

    bible gen1:1-rev22:21 > kjv.txt      # apt-get install bible-kjv
    python benchmarks/lm/bench.py --corpus kjv.txt --steps 30 --rounds 3 --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


class Timer:
    """Wall-clock seconds and this process's CPU seconds (all threads) of a block: on a shared machine the CPU
    seconds say what the work costs, the wall seconds what the load let it have. `step()` marks the end of each
    optimizer step, for the steady-state rate (set-up, warm-up and the first checkpoint left out)."""

    WARMUP = 2  # steps left out of the steady-state rate

    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        self.marks = []
        return self

    def step(self, *_args, **_kwargs) -> None:
        self.marks.append((time.perf_counter(), time.process_time()))

    def __exit__(self, *exc):
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu
        return False

    def steady(self) -> tuple[float, float]:
        """(wall, CPU) seconds per step after the warm-up steps."""
        (w0, c0), (w1, c1) = self.marks[self.WARMUP - 1], self.marks[-1]
        n = len(self.marks) - self.WARMUP
        return (w1 - w0) / n, (c1 - c0) / n


def corpus_tokens(corpus: str, vocab: int, work: Path):
    from trainyard.lm.corpus import clean_documents, read_documents
    from trainyard.lm.shards import open_tokens, prepare_shards
    from trainyard.lm.tokenizer import load_tokenizer, train_tokenizer

    tok_dir = work / "tok"
    if not (tok_dir / "tokenizer.json").is_file():
        train_tokenizer(clean_documents(read_documents([corpus], "\n\n")), vocab_size=vocab).save_pretrained(tok_dir)
    tok = load_tokenizer(tok_dir)
    prepare_shards([corpus], tok, work / "shards", separator="\n\n", val_fraction=0.01)
    return tok, open_tokens(work / "shards", "train")


def model(tok, context, size, seed=0):
    from trainyard.lm.model import build_model

    return build_model(size, vocab_size=len(tok), context=context, eos_id=tok.eos_token_id, pad_id=tok.pad_token_id, seed=seed)


def run_trainyard(tok, tokens, a, work):
    from trainyard.lm.pretrain import lm_loss
    from trainyard.lm.shards import n_windows, windows
    from trainyard.engine.batches import IndexedBatches
    from trainyard.engine.loop import LoopConfig, fit
    from trainyard.registry.tracking import RunLog
    from trainyard.registry.workspace import Workspace

    m = model(tok, a.context, a.size)
    batches = IndexedBatches(n_windows(tokens, a.context), a.batch, lambda idx, gen: windows(tokens, idx, a.context))
    cfg = LoopConfig(epochs=1, max_steps=a.steps, lr=1e-3, warmup=0.1, patience=None, device="cpu")  # precision: its default, auto
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        store = Workspace.resolve(tmp).store  # as in a real run: metrics to the store, checkpoints at the start and the end
        log = RunLog(store, store.create_run("bench", kind="language-model"))
        with Timer() as t:
            fit(m, batches, lm_loss, config=cfg, checkpoint_dir=Path(tmp) / "ckpt", log=log,
                progress=lambda kind, info: t.step() if kind == "step" else None)
        return t


def run_bare(tok, tokens, a, work, bf16=False):
    """The loop people write: fused AdamW, clipping, nothing else; with `bf16`, the forward and loss under bf16 autocast."""
    import contextlib

    import torch
    import torch.nn.functional as F

    from trainyard.lm.shards import n_windows, windows

    m = model(tok, a.context, a.size)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3, weight_decay=0.01, fused=True)  # as trainyard's loop and Trainer's default
    order = torch.randperm(n_windows(tokens, a.context), generator=torch.Generator().manual_seed(0)).numpy()
    m.train()
    with Timer() as t:
        for step in range(a.steps):
            x, y = windows(tokens, np.sort(order[step * a.batch:(step + 1) * a.batch]), a.context)
            with torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext():
                loss = F.cross_entropy(m(input_ids=x, use_cache=False).logits.flatten(0, 1), y.flatten())
            loss.backward()
            torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            t.step()
    return t


def run_trainer(tok, tokens, a, work, bf16=False):
    import torch
    from transformers import PrinterCallback, Trainer, TrainerCallback, TrainingArguments

    from trainyard.lm.shards import n_windows, windows

    class Windows(torch.utils.data.Dataset):
        def __len__(self):
            return n_windows(tokens, a.context)

        def __getitem__(self, i):
            x, y = windows(tokens, np.array([i]), a.context)
            return {"input_ids": x[0], "labels": x[0]}  # the model shifts labels itself

    m = model(tok, a.context, a.size)
    args = TrainingArguments(output_dir=str(work / "trainer"), per_device_train_batch_size=a.batch, max_steps=a.steps, learning_rate=1e-3,
                             warmup_steps=max(1, a.steps // 10), lr_scheduler_type="cosine", weight_decay=0.01, max_grad_norm=1.0,
                             logging_steps=10**6, save_strategy="no", report_to=[], use_cpu=True, dataloader_num_workers=0,
                             disable_tqdm=True, bf16=bf16)
    t = Timer()

    class Marks(TrainerCallback):
        def on_step_end(self, *args, **kwargs):
            t.step()

    trainer = Trainer(model=m, args=args, train_dataset=Windows(), callbacks=[Marks()])
    trainer.remove_callback(PrinterCallback)  # its end-of-run summary line would interleave with the table
    with t:
        trainer.train()
    return t


def child_memory(a):
    """Run in a fresh process: a few SFT steps, full or LoRA; print the peak RSS."""
    import torch

    from trainyard.lm.finetune import with_lora
    from trainyard.lm.sft import encode_example, pad_batch, token_loss
    from trainyard.lm.tokenizer import load_tokenizer
    from trainyard.lm.artifact import LanguageModel

    torch.set_num_threads(a.threads)
    tok = load_tokenizer(Path(a.work) / "tok")
    lm = LanguageModel(model(tok, a.context, a.size), tok)
    if a.child == "lora":
        from types import SimpleNamespace

        lm = with_lora(lm, SimpleNamespace(lora_r=16, lora_alpha=32))
    params = [p for p in lm.model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4, fused=True)
    rows = [encode_example(tok, "Tell me a verse about light " * 4, "And God said, Let there be light: and there was light. " * 6, a.context)] * a.batch
    before = _rss_mb("VmRSS")
    with open("/proc/self/clear_refs", "w") as fh:  # reset the high-water mark: the peak below is the training's
        fh.write("5")
    from trainyard.engine.runtime import Device, Precision

    cpu = Device("cpu")
    precision = Precision.resolve(a.precision, cpu)  # as the loop trains: 'auto' is bf16 autocast on CPUs with native bf16
    for _ in range(5):
        with precision.autocast(cpu):
            loss = token_loss(lm.model, pad_batch(rows, tok.pad_token_id))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    print(json.dumps({"mode": a.child, "peak_rss_mb": _rss_mb("VmHWM"), "before_mb": before, "trainable": sum(p.numel() for p in params),
                      "precision": precision.name}))


def _rss_mb(field: str) -> float:
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def generation(tok, a):
    from trainyard.lm.generate import Sampling, generate

    m = model(tok, 512, a.size)
    out = {}
    for cache in (True, False):
        g = generate(m, tok, "In the beginning God created the heaven and the earth. And the earth was",
                     Sampling(max_tokens=a.gen_tokens, temperature=0, stop_at_eos=False, use_cache=cache))
        out["with KV cache" if cache else "without KV cache"] = g.tokens_per_second
    return out


def arguments(steps: int = 30, rounds: int = 2) -> argparse.ArgumentParser:
    """The model, data and run settings every LM benchmark script takes."""
    p = argparse.ArgumentParser()
    p.add_argument("--corpus", required=True)
    p.add_argument("--size", default="10M")
    p.add_argument("--context", type=int, default=128)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=steps)
    p.add_argument("--rounds", type=int, default=rounds)
    p.add_argument("--vocab", type=int, default=8000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--work", default=None)
    return p


def main():
    p = arguments()
    p.add_argument("--gen-tokens", type=int, default=200)
    p.add_argument("--child", default=None)
    p.add_argument("--parts", default="speed,memory,generation", help="which parts to run (comma-separated)")
    p.add_argument("--memory-batches", default="8,1", help="batch sizes of the memory comparison")
    p.add_argument("--precision", default="auto", help="of the memory comparison's training (auto, fp32, bf16)")
    a = p.parse_args()
    if a.child:
        return child_memory(a)
    import torch

    from trainyard.lm.model import count_parameters

    torch.set_num_threads(a.threads)
    work = Path(a.work or tempfile.mkdtemp(prefix="lm-bench-"))
    a.work = str(work)
    tok, tokens = corpus_tokens(a.corpus, a.vocab, work)
    n_params = count_parameters(model(tok, a.context, a.size))
    tokens_per_run = a.steps * a.batch * a.context
    print(f"model {a.size}: {n_params / 1e6:.2f}M parameters, vocab {len(tok)}, context {a.context}, batch {a.batch}, {a.steps} steps, "
          f"{a.threads} threads, {len(tokens):,} corpus tokens; load average {os.getloadavg()[0]:.1f}")
    if "speed" in a.parts:
        from functools import partial

        from trainyard.engine.runtime import Device, Precision

        auto = Precision.resolve("auto", Device("cpu")).name
        runners = {f"trainyard loop (defaults: {auto})": run_trainyard, "bare PyTorch loop, fp32": run_bare,
                   "bare PyTorch loop, bf16 autocast": partial(run_bare, bf16=True), "HF Trainer, defaults (fp32)": run_trainer,
                   "HF Trainer, bf16=True": partial(run_trainer, bf16=True)}
        per_step = a.batch * a.context
        cols = ("whole run, tokens/s", "whole run, tokens per CPU-s", "steady, tokens/s", "steady, tokens per CPU-s")
        rates = {k: {c: [] for c in cols} for k in runners}
        names = list(runners)
        for r in range(a.rounds):
            for name in (names if r % 2 == 0 else names[::-1]):
                t = runners[name](tok, tokens, a, work)
                assert len(t.marks) == a.steps, (name, len(t.marks))
                wall, cpu = t.steady()
                row = dict(zip(cols, (tokens_per_run / t.wall, tokens_per_run / t.cpu, per_step / wall, per_step / cpu)))
                for c, v in row.items():
                    rates[name][c].append(v)
                print(f"  round {r + 1}: {name:<34} " + ", ".join(f"{c} {v:.0f}" for c, v in row.items()) + f" (load {os.getloadavg()[0]:.1f})", flush=True)
        med = {k: {c: float(np.median(v)) for c, v in d.items()} for k, d in rates.items()}
        print(f"\nMedian of {a.rounds} rounds; 'steady' leaves out set-up and the first {Timer.WARMUP} steps; "
              "'trainyard / this' is trainyard's rate over this row's.\n")
        print("| trainer | " + " | ".join(f"{c} | trainyard / this" for c in cols) + " |\n|---|" + "---|---|" * len(cols))
        for k in runners:
            print(f"| {k} | " + " | ".join(f"{med[k][c]:.0f} | {med[names[0]][c] / med[k][c]:.2f}x" for c in cols) + " |")
    if "memory" in a.parts:
        print("\n| fine-tuning | batch | precision | trainable parameters | RSS before training (MB) | peak RSS while training (MB) | peak - before (MB) |\n"
              "|---|---|---|---|---|---|---|")
        for batch in a.memory_batches.split(","):
            for mode in ("full", "lora"):
                out = subprocess.run([sys.executable, __file__, "--corpus", a.corpus, "--child", mode, "--work", a.work, "--size", a.size,
                                      "--context", str(a.context), "--batch", batch, "--threads", str(a.threads), "--precision", a.precision],
                                     capture_output=True, text=True, check=True)
                row = json.loads(out.stdout.strip().splitlines()[-1])
                print(f"| {row['mode']} | {batch} | {row['precision']} | {row['trainable']:,} | {row['before_mb']:.0f} | {row['peak_rss_mb']:.0f} | "
                      f"{row['peak_rss_mb'] - row['before_mb']:.0f} |", flush=True)
    if "generation" in a.parts:
        gen = generation(tok, a)
        print(f"\n| generation ({a.gen_tokens} tokens, greedy) | tokens/s |\n|---|---|")
        for k, v in gen.items():
            print(f"| {k} | {v:.1f} |")
        print(f"\nKV cache speed-up: {gen['with KV cache'] / gen['without KV cache']:.2f}x; load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
