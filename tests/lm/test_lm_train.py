"""Pre-training, SFT (full and LoRA, merge) and evaluation from Python, on the engine's loop with tiny models.
(DPO, the time limit and kill -9 + resume are tested through the CLI in test_lm_train_cli.py.)"""

from __future__ import annotations

import json

import pytest
import torch
from lmhelp import corpus_dir, instructions, one_torch_thread  # noqa: F401  (fixtures)

from trainyard.lm.settings import LMSettings

from trainyard.runs.dispatch import train_language_model

TINY = dict(size="tiny", context=32, batch_size=8, vocab_size=400, separator="\n%\n", samples=1, checkpoint_every=10)


@pytest.fixture(scope="module")
def pretrained(corpus_dir, tmp_path_factory, one_torch_thread):
    """A tiny model pre-trained on the synthetic corpus, registered as corpus@1 in its own workspace."""
    ws = tmp_path_factory.mktemp("ws-pre")
    result = train_language_model(corpus_dir, LMSettings(name="corpus", max_steps=120, epochs=100, eval_every=40, lr=3e-3, **TINY), workspace=ws)
    return ws, result


def test_pretraining_beats_unigram_and_logs_curves(pretrained):
    from trainyard.registry.workspace import Workspace

    ws, r = pretrained
    assert r.version == 1 and r.steps == 120
    assert r.metrics["val_perplexity"] < 0.8 * r.metrics["unigram_perplexity"]
    assert 0 < r.metrics["val_accuracy"] <= 1 and r.tokens_per_second > 0
    store = Workspace.resolve(ws).store
    losses = [m["value"] for m in store.metric_history(r.run_id, "train_loss")]
    assert len(losses) == 120 and losses[-1] < losses[0]
    assert len(store.metric_history(r.run_id, "val_perplexity")) >= 2
    assert store.get_run(r.run_id)["status"] == "finished"
    assert r.samples[0]["before"] != r.samples[0]["after"]


def test_sft_full_changes_behaviour(pretrained, tmp_path):
    ws, _ = pretrained
    data = instructions(tmp_path / "inst.jsonl")
    r = train_language_model(data, LMSettings(task="sft", base="corpus@1", name="inst", max_steps=60, epochs=100, lr=3e-3,
                                              batch_size=8, context=32, samples=1, val_fraction=0.2), workspace=ws)
    assert r.samples[0]["after"].startswith("It is on the mat.")
    assert not r.samples[0]["before"].startswith("It is on the mat.")


def test_lora_adapter_saved_separately_and_merge_is_identical(pretrained, tmp_path):
    import trainyard
    from trainyard.lm.artifact import LanguageModel
    from trainyard.registry.workspace import Workspace

    ws, _ = pretrained
    data = instructions(tmp_path / "inst.jsonl")
    r = train_language_model(data, LMSettings(task="sft", base="corpus@1", name="lora", lora=True, lora_r=4, max_steps=12, epochs=100,
                                              batch_size=8, context=32, samples=1), workspace=ws)
    store = Workspace.resolve(ws).store
    row = store.resolve_model(f"lora@{r.version}")
    files = {p.name for p in (ws / row["artifact_path"]).iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors"} <= files and "model.safetensors" not in files
    adapter = trainyard.load(f"lora@{r.version}", workspace=ws)
    assert isinstance(adapter, LanguageModel) and adapter.is_adapter
    x = torch.tensor([adapter.tokenizer("<|user|>\nWhere is the owl?\n<|assistant|>\n")["input_ids"]])
    with torch.no_grad():
        unmerged = adapter.model(input_ids=x).logits
        merged = adapter.merged()
        assert not merged.is_adapter
        assert torch.allclose(merged.model(input_ids=x).logits, unmerged, atol=1e-5)
    base = trainyard.load("corpus@1", workspace=ws)
    with torch.no_grad():
        assert not torch.allclose(base.model(input_ids=x).logits, unmerged, atol=1e-3)  # the adapter did change something


def test_evaluate_heldout_text_and_compare(pretrained, tmp_path):
    from lmhelp import documents

    import trainyard
    from trainyard.lm.evaluate import evaluate_language_model
    from trainyard.lm.model import build_model

    ws, _ = pretrained
    trained = trainyard.load("corpus@1", workspace=ws)
    fresh = type(trained)(build_model("tiny", vocab_size=len(trained.tokenizer), context=32, seed=5), trained.tokenizer)
    held = tmp_path / "heldout.txt"
    held.write_text(" ".join(documents(30, seed=99)))  # unseen documents of the same kind
    report = evaluate_language_model(trained, held, compare=fresh, n_samples=2)
    assert report["model"]["perplexity"] < 0.5 * report["compare"]["perplexity"]
    # the unigram baseline of the training corpus (kept in the artifact), on the same held-out tokens
    assert report["model"]["perplexity"] < 0.5 * report["model"]["unigram_perplexity"] and "unigram_perplexity" not in report["compare"]
    assert report["model"]["accuracy"] > report["compare"]["accuracy"] and report["model"]["tokens"] > 100
    assert len(report["samples"]) == 1 and {"prompt", "model", "compare"} <= set(report["samples"][0])
    pairs = tmp_path / "qa.jsonl"
    pairs.write_text(json.dumps({"prompt": "Where?", "response": "The cat sat on the mat."}) + "\n")
    scored = evaluate_language_model(trained, pairs)
    assert scored["model"]["scored"] == "responses" and scored["model"]["examples"] == 1
