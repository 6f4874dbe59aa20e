"""Pre-training, SFT (full and LoRA), DPO and resume, on the engine's loop with tiny models."""

from __future__ import annotations

import json
import random

import pytest
import torch
from lmhelp import corpus_dir, one_torch_thread  # noqa: F401  (fixtures)

from trainyard.lm.train import LMSettings, train_language_model

# These run on the engine's loop (issue 9); until it is in this checkout they are skipped, not failed.
loop = pytest.importorskip("trainyard.training.loop", reason="the deep-learning loop (trainyard.training.loop) is not merged yet")

TINY = dict(size="tiny", context=32, batch_size=8, vocab_size=400, separator="\n%\n", samples=1, checkpoint_every=10)


@pytest.fixture(scope="module")
def pretrained(corpus_dir, tmp_path_factory, one_torch_thread):
    """A tiny model pre-trained on the synthetic corpus, registered as corpus@1 in its own workspace."""
    ws = tmp_path_factory.mktemp("ws-pre")
    result = train_language_model(corpus_dir, LMSettings(name="corpus", max_steps=120, epochs=100, eval_every=40, lr=3e-3, **TINY), workspace=ws)
    return ws, result


def test_pretraining_beats_unigram_and_logs_curves(pretrained):
    from trainyard.workspace import Workspace

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


def _instructions(path, n=40, seed=0):
    rng = random.Random(seed)
    animals = ["cat", "dog", "owl", "fox", "frog", "horse"]
    rows = [{"prompt": f"Where is the {rng.choice(animals)}?", "response": "It is on the mat."} for _ in range(n)]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    return path


def test_sft_full_changes_behaviour(pretrained, tmp_path):
    ws, _ = pretrained
    data = _instructions(tmp_path / "inst.jsonl")
    r = train_language_model(data, LMSettings(task="sft", base="corpus@1", name="inst", max_steps=60, epochs=100, lr=3e-3,
                                              batch_size=8, context=32, samples=1, val_fraction=0.2), workspace=ws)
    assert r.samples[0]["after"].startswith("It is on the mat.")
    assert not r.samples[0]["before"].startswith("It is on the mat.")


def test_lora_adapter_saved_separately_and_merge_is_identical(pretrained, tmp_path):
    import trainyard
    from trainyard.lm.artifact import LanguageModel
    from trainyard.workspace import Workspace

    ws, _ = pretrained
    data = _instructions(tmp_path / "inst.jsonl")
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


def test_dpo_raises_the_chosen_margin(pretrained, tmp_path):
    ws, _ = pretrained
    rng = random.Random(1)
    rows = [{"prompt": f"Tell me about the {a}.", "chosen": f"The {a} sat on the mat.", "rejected": f"The {a} ran to the road."}
            for a in (rng.choice(["cat", "dog", "owl", "fox", "frog", "horse", "bird", "mouse"]) for _ in range(40))]
    path = tmp_path / "prefs.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    r = train_language_model(path, LMSettings(task="preference", base="corpus@1", name="dpo", max_steps=15, epochs=100, lr=1e-3,
                                              batch_size=8, context=48, samples=1, val_fraction=0.2, beta=0.1), workspace=ws)
    assert r.metrics["val_margin"] > r.metrics["val_margin_before"] + 1.0
    assert r.metrics["val_reward_accuracy"] > 0.9
    assert (ws / "runs" / r.run_id / "reference_logps.pt").is_file()


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
    assert report["model"]["accuracy"] > report["compare"]["accuracy"] and report["model"]["tokens"] > 100
    assert len(report["samples"]) == 1 and {"prompt", "model", "compare"} <= set(report["samples"][0])
    pairs = tmp_path / "qa.jsonl"
    pairs.write_text(json.dumps({"prompt": "Where?", "response": "The cat sat on the mat."}) + "\n")
    scored = evaluate_language_model(trained, pairs)
    assert scored["model"]["scored"] == "responses" and scored["model"]["examples"] == 1


@pytest.mark.slow
def test_kill_9_and_resume_ends_bit_identical(corpus_dir, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    from safetensors.torch import load_file

    from lmhelp import ONE_THREAD_ENV
    from trainyard.lm.train import resume_language_model
    from trainyard.workspace import Workspace

    settings = dict(name="k", max_steps=30, epochs=100, lr=3e-3, **{**TINY, "checkpoint_every": 4})
    ref_ws, ws = tmp_path / "ref", tmp_path / "killed"
    reference = train_language_model(corpus_dir, LMSettings(**settings), workspace=ref_ws)
    script = (f"from trainyard.lm.train import LMSettings, train_language_model\n"
              f"train_language_model({str(corpus_dir)!r}, LMSettings(**{settings!r}), workspace={str(ws)!r})\n")
    src = os.path.join(os.path.dirname(__file__), "..", "src")
    proc = subprocess.Popen([sys.executable, "-c", script], env={**os.environ, **ONE_THREAD_ENV, "PYTHONPATH": src},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not list(ws.glob("runs/*/checkpoints/step-00000012")):
        assert proc.poll() is None and time.monotonic() < deadline, "the training process ended before its 12th step"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    store = Workspace.resolve(ws).store
    run_id = store.list_runs()[0]["id"]
    assert store.get_run(run_id)["model_version"] is None  # killed before the end
    resumed = resume_language_model(run_id, workspace=ws)
    assert resumed.steps == reference.steps == 30
    a = load_file(str(ref_ws / "artifacts" / "k" / reference.run_id / "model.safetensors"))
    b = load_file(str(ws / "artifacts" / "k" / run_id / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert any(e["kind"] == "resume" for e in store.events(run_id))


@pytest.mark.skipif(not hasattr(loop.LoopConfig, "time_limit") and "time_limit" not in getattr(loop.LoopConfig, "__dataclass_fields__", {}),
                    reason="this loop has no time_limit setting yet")
def test_time_limit_stops_cleanly(corpus_dir, tmp_path):
    r = train_language_model(corpus_dir, LMSettings(name="t", max_steps=100_000, epochs=1000, time_limit=2.0, **TINY), workspace=tmp_path / "ws")
    assert 1 <= r.steps < 100_000 and r.version == 1 and r.seconds < 60

