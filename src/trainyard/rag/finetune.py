"""Fine-tune the retrieval encoder on (query, passage) pairs with in-batch negatives, on the engine's loop.

    trainyard train pairs.jsonl --task embedding --base minilm --name docs-encoder

Each JSONL line is {"query": ..., "passage": ...}. In a batch of B pairs every query's own passage is the
positive and the other B-1 passages are its negatives: the loss is the cross-entropy of the scaled cosine
matrix (multiple-negatives ranking loss). A share of the pairs is held out first (pairs sharing a passage
stay on one side); retrieval on them, every held-out query against every held-out passage, is measured
with the base encoder and with the fine-tuned one (MRR@10, recall@1, recall@10), so the gain is reported,
not assumed. The result is registered as a "text-encoder" (a Hugging Face directory in a hashed artifact)
and `trainyard index NAME DOCS --encoder docs-encoder` builds an index with it.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from trainyard.errors import DataError
from trainyard.rag.encoder import ENCODER_KIND, Encoder, resolve_encoder
from trainyard.registry.artifact import save_artifact
from trainyard.registry.workspace import Workspace


@dataclass(frozen=True)
class EmbeddingSettings:
    """Every setting of an encoder fine-tuning run, declared once."""

    base: str = "minilm"  # minilm, a Hugging Face directory, or a registered encoder
    name: str | None = None
    epochs: int = 1
    max_steps: int | None = None
    batch_size: int = 32  # pairs per batch: each query has batch_size - 1 in-batch negatives
    lr: float = 2e-5
    max_length: int = 128  # word pieces per text
    scale: float = 20.0  # cosine -> logit multiplier (temperature 0.05)
    val_fraction: float = 0.1  # held-out pairs for the before/after retrieval measure
    lora: bool = False  # train low-rank adapters on the attention's query and value projections, merged before saving
    lora_r: int = 8
    seed: int = 0
    device: str = "cpu"
    threads: int | None = None


@dataclass
class EncoderResult:
    run_id: str
    name: str
    version: int
    metrics: dict
    steps: int
    seconds: float


def read_pairs(path: Path) -> list[tuple[str, str]]:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} does not exist.", "pass a JSONL file of {\"query\": ..., \"passage\": ...} lines.")
    pairs = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            raise DataError(f"{path} line {n} is not JSON.", "write one JSON object per line.") from None
        q, p = (row.get("query"), row.get("passage", row.get("positive"))) if isinstance(row, dict) else (None, None)
        if not isinstance(q, str) or not isinstance(p, str) or not q.strip() or not p.strip():
            raise DataError(f"{path} line {n} needs a \"query\" and a \"passage\" string.", "give every line both.")
        pairs.append((q, p))
    if len(pairs) < 20:
        raise DataError(f"{path} holds {len(pairs)} pairs; fine-tuning needs at least 20.", "add more (query, passage) pairs.")
    return pairs


def split_pairs(pairs: list[tuple[str, str]], val_fraction: float, seed: int) -> tuple[list, list]:
    """Held-out pairs by passage (a passage and all its queries on one side)."""
    passages = sorted({p for _, p in pairs})
    rng = np.random.default_rng(seed)
    held = set(rng.permutation(len(passages))[: max(2, int(round(len(passages) * val_fraction)))].tolist())
    held_passages = {passages[i] for i in held}
    return [x for x in pairs if x[1] not in held_passages], [x for x in pairs if x[1] in held_passages]


def retrieval_scores(encoder: Encoder, pairs: list[tuple[str, str]]) -> dict:
    """Every held-out query against every distinct held-out passage: MRR@10, recall@1, recall@10."""
    passages = sorted({p for _, p in pairs})
    where = {p: i for i, p in enumerate(passages)}
    sims = encoder.encode([q for q, _ in pairs]) @ encoder.encode(passages).T
    target = np.array([where[p] for _, p in pairs])
    ranks = (sims > sims[np.arange(len(pairs)), target][:, None]).sum(axis=1)  # 0 = first
    return {"mrr@10": float(np.where(ranks < 10, 1.0 / (ranks + 1), 0.0).mean()), "recall@1": float((ranks < 1).mean()),
            "recall@10": float((ranks < 10).mean()), "queries": len(pairs), "passages": len(passages)}


def train_encoder(data: Path, s: EmbeddingSettings = EmbeddingSettings(), *, workspace: str | os.PathLike | None = None,
                  progress=None) -> EncoderResult:
    import torch

    from trainyard.engine.batches import IndexedBatches  # (the engine imports torch: deferred like it)
    from trainyard.engine.loop import LoopConfig, fit
    from trainyard.registry.tracking import RunLog

    ws = Workspace.resolve(workspace)
    pairs = read_pairs(data)
    train, held = split_pairs(pairs, s.val_fraction, s.seed)
    name = s.name or f"{Path(data).stem}-encoder"
    encoder = Encoder(resolve_encoder(s.base, ws), max_length=s.max_length, threads=s.threads, device=s.device)
    run_id = ws.store.create_run(name, kind=ENCODER_KIND, task="embedding", metric="mrr@10", data_source=str(Path(data).resolve()),
                                 config={"embedding": asdict(s)})
    with ws.store.running(run_id):
        started = time.perf_counter()
        before = retrieval_scores(encoder, held)
        tok = encoder.tokenizer

        def load(rows, _generator):
            enc = lambda texts: dict(tok(texts, padding=True, truncation=True, max_length=s.max_length, return_tensors="pt"))  # noqa: E731
            return {"q": enc([train[i][0] for i in rows]), "p": enc([train[i][1] for i in rows])}

        def pooled(model, batch):
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            return torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9), dim=-1)

        def loss_fn(model, batch):
            logits = pooled(model, batch["q"]) @ pooled(model, batch["p"]).T * s.scale
            return torch.nn.functional.cross_entropy(logits, torch.arange(len(logits), device=logits.device))

        def evaluate(model):
            return {"val_mrr@10": retrieval_scores(encoder, held)["mrr@10"]}

        cfg = LoopConfig(epochs=s.epochs, max_steps=s.max_steps, lr=s.lr, warmup=0.1, schedule="cosine", monitor="val_mrr@10",
                         patience=None, restore_best=False, checkpoint_every=None, seed=s.seed, device=s.device, clip_norm=1.0)
        model = _with_lora(encoder.model, s.lora_r) if s.lora else encoder.model
        model.train()
        result = fit(model, IndexedBatches(len(train), s.batch_size, load, prefetch=False), loss_fn, config=cfg, evaluate=evaluate,
                     checkpoint_dir=ws.run_dir(run_id) / "checkpoints", log=RunLog(ws.store, run_id), progress=progress)
        if s.lora:  # fold the adapters into the weights: the registered encoder is a plain Hugging Face model
            encoder.use(model.merge_and_unload())
        encoder.model.eval()
        after = retrieval_scores(encoder, held)
        metrics = {**{f"before_{k}": v for k, v in before.items() if k not in ("queries", "passages")},
                   **{f"after_{k}": v for k, v in after.items() if k not in ("queries", "passages")},
                   "held_out_queries": after["queries"], "held_out_passages": after["passages"], "train_pairs": len(train)}
        metrics["mrr@10_gain"] = metrics["after_mrr@10"] - metrics["before_mrr@10"]
        version = _register(ws, name, run_id, encoder, s, metrics)
        ws.store.update_run(run_id, status="finished", model_version=version, best_score=metrics["after_mrr@10"])
    return EncoderResult(run_id, name, version, metrics, result.state.step, time.perf_counter() - started)


def _with_lora(model, r: int):
    from peft import LoraConfig, get_peft_model

    return get_peft_model(model, LoraConfig(r=r, lora_alpha=2 * r, lora_dropout=0.1, target_modules=["query", "value"]))


def _register(ws, name: str, run_id: str, encoder: Encoder, s: EmbeddingSettings, metrics: dict) -> int:
    ws.ensure()
    artifact_dir = ws.artifacts / name / run_id
    with tempfile.TemporaryDirectory(dir=ws.home, prefix=".encoder-save-") as tmp:
        encoder.model.save_pretrained(Path(tmp) / "encoder", safe_serialization=True)
        encoder.tokenizer.save_pretrained(Path(tmp) / "encoder")
        files = {p.relative_to(tmp).as_posix(): p for p in Path(tmp).rglob("*") if p.is_file()}
        meta = {"kind": ENCODER_KIND, "name": name, "run_id": run_id, "task": "embedding", "base": encoder.source.label,
                "base_id": encoder.source.id, "settings": asdict(s), "metrics": metrics}
        digest = save_artifact(None, artifact_dir, meta, extra_files=files)
    return ws.store.register_model(name, artifact_path=str(artifact_dir.relative_to(ws.home)), meta_sha256=digest, run_id=run_id,
                                   task="embedding", metric="mrr@10", test_score=metrics["after_mrr@10"], metrics=metrics,
                                   family=f"encoder ({encoder.source.label})")
