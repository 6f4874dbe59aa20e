"""Encoder fine-tuning with in-batch negatives: registered, measured before/after, usable for an index."""

from __future__ import annotations

import json

import pytest
from raghelp import handbook, random_encoder  # noqa: F401  (fixtures)

from trainyard.rag.encoder import Encoder, resolve_encoder
from trainyard.rag.finetune import EmbeddingSettings, EncoderPlan, read_pairs, retrieval_scores
from trainyard.registry.workspace import Workspace
from trainyard.runs.driver import execute

COLOURS = ["red", "green", "blue", "amber", "violet", "silver", "golden", "black", "white", "orange"]
THINGS = ["server", "printer", "router", "laptop", "badge", "locker", "monitor", "ticket"]


@pytest.fixture
def pairs_file(tmp_path):
    rows = [{"query": f"where is the {c} {t}", "passage": f"The {t} with the {c} label sits in room {i * 8 + j}."}
            for i, c in enumerate(COLOURS) for j, t in enumerate(THINGS)]
    path = tmp_path / "pairs.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    return path


def test_fine_tuning_learns_the_pairs_and_registers_an_encoder_an_index_can_use(pairs_file, random_encoder, handbook, workspace,
                                                                               torch_one_thread, cli_inproc):
    pairs = read_pairs(pairs_file)
    base = Encoder(resolve_encoder(str(random_encoder)))
    before = retrieval_scores(base, pairs)
    settings = EmbeddingSettings(base=str(random_encoder), name="enc", epochs=4, batch_size=16, lr=3e-3, val_fraction=0.2)
    result = execute(EncoderPlan(pairs_file, settings), Workspace.resolve(workspace))
    m = result.metrics
    assert result.version == 1 and result.steps == 4 * -(-m["train_pairs"] // 16)
    assert {"before_mrr@10", "after_mrr@10", "mrr@10_gain", "held_out_queries"} <= set(m) and m["held_out_queries"] >= 2
    tuned = resolve_encoder("enc", Workspace.resolve(workspace))
    assert tuned.label == "enc@1" and tuned.id != resolve_encoder(str(random_encoder)).id
    after = retrieval_scores(Encoder(tuned), pairs)
    assert after["mrr@10"] > before["mrr@10"] + 0.1  # it learnt the pairs it was trained on
    r = cli_inproc("index", "hb", handbook, "--encoder", "enc@1")
    assert r.code == 0, r.output
    r = cli_inproc("search", "hb", "canteen", "--json")
    assert r.code == 0 and json.loads(r.stdout)["results"]
    r = cli_inproc("search", "hb", "canteen", "--encoder", "minilm")
    assert r.code == 2 and "was built with the encoder enc@1" in r.output
    r = cli_inproc("train", pairs_file, "--task", "embedding", "--base", "enc@1", "--name", "enc", "--epochs", "1", "--lora", "--lr", "1e-2",
                   "--json")
    assert r.code == 0, r.output
    assert json.loads(r.stdout)["version"] == 2
    merged = resolve_encoder("enc@2", Workspace.resolve(workspace))  # LoRA adapters merged: a plain Hugging Face encoder again
    assert merged.id != tuned.id and not (merged.path / "adapter_config.json").exists()
    assert Encoder(merged).encode(["where is the red server"]).shape == (1, 32)
    (pairs_file.parent / "few.jsonl").write_text(json.dumps({"query": "a", "passage": "b"}))
    r = cli_inproc("train", pairs_file.parent / "few.jsonl", "--task", "embedding")
    assert r.code == 2 and "at least 20" in r.output
