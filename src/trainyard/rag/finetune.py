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
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from trainyard.errors import DataError
from trainyard.rag.encoder import ENCODER_KIND, Encoder, resolve_encoder
from trainyard.rag.settings import EmbeddingSettings
from trainyard.registry.plan import Registered, RunContext, RunResult, RunSpec


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


class EncoderPlan:
    """`trainyard train pairs.jsonl --task embedding` as a plan of the run driver (runs/driver.py): prepare reads
    and splits the pairs and scores the base encoder on the held-out ones, fit runs the engine's loop, evaluate
    scores the tuned encoder on the same held-out pairs, register saves it as a `text-encoder`."""

    def __init__(self, data: Path, settings: EmbeddingSettings = EmbeddingSettings()):
        self.data, self.s = Path(data), settings
        self.name = settings.name or f"{self.data.stem}-encoder"

    @classmethod
    def of_run(cls, run: dict) -> "EncoderPlan":
        """The plan of a recorded run, for `trainyard resume` (the loop continues from the run's last checkpoint)."""
        return cls(Path(run["data_source"]), EmbeddingSettings(**{**run["config"]["embedding"], "name": run["name"]}))

    def spec(self) -> RunSpec:
        return RunSpec(self.name, ENCODER_KIND, "embedding", "mrr@10", data_source=str(self.data.resolve()),
                       config={"embedding": asdict(self.s)})

    def prepare(self, run: RunContext) -> None:
        s = self.s
        self.train, self.held = split_pairs(read_pairs(self.data), s.val_fraction, s.seed)
        self.encoder = Encoder(resolve_encoder(s.base, run.ws), max_length=s.max_length, threads=s.threads, device=s.device)
        self.before = retrieval_scores(self.encoder, self.held)

    def fit(self, run: RunContext) -> None:
        from trainyard.engine.batches import IndexedBatches  # the engine imports PyTorch: loaded when a model trains
        from trainyard.engine.loop import LoopConfig, fit

        s, encoder = self.s, self.encoder
        cfg = LoopConfig(epochs=s.epochs, max_steps=s.max_steps, lr=s.lr, warmup=0.1, schedule="cosine", monitor="val_mrr@10",
                         patience=None, restore_best=False, checkpoint_every=s.checkpoint_every, seed=s.seed, device=s.device, clip_norm=1.0)
        model = _with_lora(encoder.model, s.lora_r) if s.lora else encoder.model
        model.train()
        batches = IndexedBatches(len(self.train), s.batch_size, self._load_batch, prefetch=False)
        self.fitted = fit(model, batches, self._loss, config=cfg, checkpoint_dir=run.run_dir / "checkpoints", log=run.log(), resume=run.resumed,
                          evaluate=lambda m: {"val_mrr@10": retrieval_scores(encoder, self.held)["mrr@10"]}, progress=run.emit)
        if s.lora:  # fold the adapters into the weights: the registered encoder is a plain Hugging Face model
            encoder.use(model.merge_and_unload())
        encoder.model.eval()

    def _load_batch(self, rows, _generator) -> dict:
        def tokens(texts):
            return dict(self.encoder.tokenizer(texts, padding=True, truncation=True, max_length=self.s.max_length, return_tensors="pt"))

        return {"q": tokens([self.train[i][0] for i in rows]), "p": tokens([self.train[i][1] for i in rows])}

    def _loss(self, model, batch):
        """Multiple-negatives ranking: each query against every passage of the batch, its own the right answer."""
        import torch

        def pooled(inputs):
            hidden = model(**inputs).last_hidden_state
            mask = inputs["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            return torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9), dim=-1)

        logits = pooled(batch["q"]) @ pooled(batch["p"]).T * self.s.scale
        return torch.nn.functional.cross_entropy(logits, torch.arange(len(logits), device=logits.device))

    def evaluate(self, run: RunContext) -> dict[str, float]:
        after = retrieval_scores(self.encoder, self.held)
        skip = ("queries", "passages")
        metrics = {**{f"before_{k}": v for k, v in self.before.items() if k not in skip},
                   **{f"after_{k}": v for k, v in after.items() if k not in skip},
                   "held_out_queries": after["queries"], "held_out_passages": after["passages"], "train_pairs": len(self.train)}
        metrics["mrr@10_gain"] = metrics["after_mrr@10"] - metrics["before_mrr@10"]
        return metrics

    def register(self, run: RunContext, metrics: dict[str, float]) -> Registered:
        run.ws.ensure()
        encoder, family = self.encoder, f"encoder ({self.encoder.source.label})"
        with tempfile.TemporaryDirectory(dir=run.ws.home, prefix=".encoder-save-") as tmp:
            encoder.model.save_pretrained(Path(tmp) / "encoder", safe_serialization=True)
            encoder.tokenizer.save_pretrained(Path(tmp) / "encoder")
            files = {p.relative_to(tmp).as_posix(): p for p in Path(tmp).rglob("*") if p.is_file()}
            meta = {"kind": ENCODER_KIND, "task": "embedding", "base": encoder.source.label, "base_id": encoder.source.id,
                    "settings": asdict(self.s), "metrics": metrics}
            version = run.register(None, meta, task="embedding", metric="mrr@10", metrics=metrics, family=family,
                                   test_score=metrics["after_mrr@10"], extra_files=files)
        return Registered(version, metrics["after_mrr@10"], family)

    def result(self, run: RunContext, registered: Registered, metrics: dict[str, float]) -> RunResult:
        return RunResult(run.run_id, self.name, registered.version, ENCODER_KIND, "embedding", "after_mrr@10", metrics,
                         model=self.encoder, family=registered.best_family, steps=self.fitted.state.step, seconds=self.fitted.seconds)


def _with_lora(model, r: int):
    from peft import LoraConfig, get_peft_model

    return get_peft_model(model, LoraConfig(r=r, lora_alpha=2 * r, lora_dropout=0.1, target_modules=["query", "value"]))
