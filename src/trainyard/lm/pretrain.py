"""Pre-training plan: next-token prediction on packed windows of the memory-mapped corpus.

The tokenizer is the base model's, the one given with --tokenizer, or a new
byte-level BPE trained on the (cleaned) corpus and kept in the run directory.
The corpus is tokenised once into shards under the workspace (reused when the
same files and tokenizer come again). Each batch is `batch_size` windows of
`context + 1` tokens read from the memory map; validation uses held-out
documents. A unigram model of the training tokens gives the baseline
perplexity the trained model has to beat.
"""

from __future__ import annotations

import math

import numpy as np

from trainyard.errors import DataError
from trainyard.lm.artifact import LanguageModel, load_base
from trainyard.lm.corpus import clean_documents, read_documents
from trainyard.lm.model import build_model, context_length
from trainyard.lm.settings import TaskSetup
from trainyard.lm.tokenizer import load_tokenizer, train_tokenizer

UNIGRAM_FILE = "unigram_counts.npy"  # in a pre-trained model's artifact: token counts of its training corpus


def plan(data, s, ws, run_dir, emit) -> TaskSetup:
    from trainyard.lm.shards import n_windows, open_tokens, prepare_shards, shards_key
    from trainyard.engine.batches import IndexedBatches

    base = load_base(s.base, ws.home) if s.base else None
    tok = base.tokenizer if base else _tokenizer(data, s, run_dir, emit)
    emit("stage", {"message": "tokenising the corpus into shards"})
    shards = ws.home / "shards" / shards_key([data], tok, val_fraction=s.val_fraction, separator=s.separator, text_field=s.text_field)[:16]
    meta = prepare_shards([data], tok, shards, val_fraction=s.val_fraction, separator=s.separator, text_field=s.text_field)
    train, val = open_tokens(shards, "train"), open_tokens(shards, "val")
    if base is not None:
        model, context = base.model, min(s.context, context_length(base.model.config))
    else:
        context = s.context
        model = build_model(s.size, vocab_size=len(tok), context=context, arch=s.arch, experts=s.experts,
                            eos_id=tok.eos_token_id, pad_id=tok.pad_token_id, seed=s.seed)
    if n_windows(train, context) < 1:
        raise DataError(f"The corpus has {len(train)} training tokens, fewer than one window of --context {context}.",
                        "add more text or lower --context.")
    if n_windows(val, context) < 1:
        raise DataError(f"The held-out share of the corpus ({meta['tokens']['val']} tokens) is shorter than one window of --context {context}.",
                        "add more documents, raise --val-fraction, or lower --context.")
    batches = IndexedBatches(n_windows(train, context), s.batch_size, lambda idx, gen: windows_of(train, idx, context))
    val_idx = np.linspace(0, n_windows(val, context) - 1, min(n_windows(val, context), s.eval_batches * s.batch_size)).astype(int)
    val_idx = np.unique(val_idx)

    def evaluate(m) -> dict:
        return held_out_loss(m, val, val_idx, context, s.batch_size)

    prompts = _prompts(tok, val, s.samples)
    family = type(model).__name__.replace("ForCausalLM", "").replace("LMHeadModel", "").lower()
    counts = unigram_counts(train, len(tok))
    return TaskSetup(LanguageModel(model, tok), batches, lm_loss, evaluate, prompts,
                meta={"tokens_per_step": s.batch_size * context, "family": family,
                      "baseline": {"unigram_perplexity": unigram_perplexity(counts, val)},
                      "files": {UNIGRAM_FILE: counts},  # kept with the model: `trainyard evaluate` reports the same baseline
                      "artifact": {"corpus": meta["report"], "tokens": meta["tokens"], "context": context},
                      "ranks": {"train": train, "val": val, "val_idx": val_idx, "context": context, "batch_size": s.batch_size}})


def windows_of(tokens, idx, context):
    from trainyard.lm.shards import windows

    return windows(tokens, idx, context)


def lm_loss(model, batch):
    """Mean next-token cross-entropy (plus the router's balancing loss for a mixture of experts)."""
    import torch.nn.functional as F

    x, y = batch
    out = model(input_ids=x, use_cache=False)
    loss = F.cross_entropy(out.logits.flatten(0, 1).float(), y.flatten())
    aux = getattr(out, "aux_loss", None)
    if aux is not None:
        loss = loss + model.config.router_aux_loss_coef * aux
    return loss


def held_out_loss(model, tokens, idx, context: int, batch_size: int) -> dict:
    """Mean loss and next-token accuracy over the windows `idx` of `tokens` (every token weighted equally)."""
    import torch
    import torch.nn.functional as F

    from trainyard.lm.shards import windows

    device = next(model.parameters()).device
    total, correct, count = 0.0, 0, 0
    with torch.no_grad():
        for i in range(0, len(idx), batch_size):
            x, y = windows(tokens, idx[i:i + batch_size], context)
            x, y = x.to(device), y.to(device)
            logits = model(input_ids=x, use_cache=False).logits.float()
            total += float(F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="sum"))
            correct += int((logits.argmax(-1) == y).sum())
            count += y.numel()
    loss = total / max(count, 1)
    return {"val_loss": loss, "val_perplexity": math.exp(min(loss, 50)), "val_accuracy": correct / max(count, 1)}


def unigram_counts(train, vocab_size: int) -> np.ndarray:
    """How often each token occurs in the training tokens (read in chunks from the memory map)."""
    counts = np.zeros(vocab_size, dtype=np.int64)
    for start in range(0, len(train), 1 << 24):
        counts += np.bincount(np.asarray(train[start:start + (1 << 24)]), minlength=vocab_size)[:vocab_size]
    return counts


def unigram_perplexity(counts: np.ndarray, tokens) -> float:
    """Perplexity on `tokens` of the training token frequencies `counts` (add-one smoothing): the floor to beat."""
    logp = np.log((counts + 1.0) / (counts.sum() + len(counts)))
    return float(math.exp(-logp[np.asarray(tokens, dtype=np.int64)].mean()))


def _tokenizer(data, s, run_dir, emit):
    if s.tokenizer:
        return load_tokenizer(s.tokenizer)
    path = run_dir / "tokenizer"
    if (path / "tokenizer.json").is_file():  # a resumed run: the same tokenizer as before
        return load_tokenizer(path)
    emit("stage", {"message": f"training a {s.vocab_size}-token BPE tokenizer on the corpus"})
    tok = train_tokenizer(clean_documents(read_documents([data], s.separator, s.text_field)), vocab_size=s.vocab_size)
    tok.save_pretrained(path)
    return load_tokenizer(path)


def _prompts(tok, val, n: int) -> list[str]:
    """The first words of the first few held-out documents."""
    eos = tok.eos_token_id
    ends = np.flatnonzero(np.asarray(val[:200_000]) == eos)
    starts = [0, *(ends[:-1] + 1).tolist()]
    prompts = []
    for a in starts[:n]:
        words = tok.decode(np.asarray(val[a:a + 12]).tolist()).split(tok.eos_token)[0].split()[:4]
        if words:
            prompts.append(" ".join(words))
    return prompts
