"""`trainyard train --task causal-lm | sft | preference` and `trainyard resume` end to end, as a user runs them
(subprocess CLI, a temporary workspace, the tiny synthetic corpus, tiny models, one torch thread)."""

from __future__ import annotations

import json
import time

import pytest
from lmhelp import ONE_THREAD_ENV, corpus_dir, documents, instructions, one_torch_thread, preferences, tiny_model, tokenizer  # noqa: F401

TINY = ["--size", "tiny", "--context", "32", "--batch-size", "8", "--vocab-size", "400", "--doc-separator", "\\n%\\n"]


def _train(cli, *args, timeout: float = 300):
    res = cli("train", *args, "--json", env=ONE_THREAD_ENV, timeout=timeout)
    assert res.code == 0, res.output
    return json.loads(res.stdout)


@pytest.mark.slow
def test_pretrain_sft_lora_dpo_and_evaluate_from_the_cli(cli, corpus_dir, tmp_path):
    pre = _train(cli, corpus_dir, "--task", "causal-lm", *TINY, "--name", "lm", "--max-steps", "120", "--lr", "3e-3")
    assert (pre["name"], pre["version"], pre["steps"]) == ("lm", 1, 120) and not pre["timed_out"]
    assert pre["metrics"]["val_perplexity"] < 0.8 * pre["metrics"]["unigram_perplexity"]

    # instruction tuning with LoRA on the registered model: the answer on held-out prompts changes to the trained one
    sft = _train(cli, instructions(tmp_path / "inst.jsonl"), "--task", "sft", "--base", "lm@1", "--lora", "--lora-r", "16",
                 "--max-steps", "200", "--lr", "3e-3", "--batch-size", "8", "--context", "32", "--val-fraction", "0.2")
    assert sft["name"] == "inst" and sft["version"] == 1
    sample = sft["samples"][0]
    assert sample["after"].startswith("It is on the mat.") and not sample["before"].startswith("It is on the mat.")
    gen = cli("generate", "inst@1", "Where is the dog?", "--chat", "--temperature", "0", "--max-tokens", "12", env=ONE_THREAD_ENV)
    assert gen.code == 0 and "It is on the mat." in gen.stdout, gen.output

    # DPO on top of the LoRA model (its merged weights): the held-out chosen-over-rejected margin goes up
    dpo = _train(cli, preferences(tmp_path / "prefs.jsonl"), "--task", "preference", "--base", "inst@1", "--method", "dpo",
                 "--max-steps", "15", "--lr", "1e-3", "--context", "48", "--val-fraction", "0.2")
    assert dpo["metrics"]["val_margin"] > dpo["metrics"]["val_margin_before"] + 1.0
    assert 0 <= dpo["metrics"]["val_win_rate_before"] <= dpo["metrics"]["val_win_rate"] and dpo["metrics"]["val_win_rate"] > 0.8
    assert dpo["metrics"]["val_reward_accuracy"] > 0.9 and "val_perplexity" not in dpo["metrics"]
    # the same measure on other held-out pairs through `trainyard evaluate`, next to the base (inst@1, before DPO)
    res = cli("evaluate", "prefs@1", "--data", preferences(tmp_path / "held-prefs.jsonl", n=10, seed=7), "--json", env=ONE_THREAD_ENV)
    assert res.code == 0, res.output
    pairs = json.loads(res.stdout)
    assert pairs["model"]["scored"] == "pairs" and pairs["model"]["examples"] == 10
    assert pairs["model"]["margin"] > pairs["compare"]["margin"] + 1.0 and pairs["model"]["win_rate"] >= 0.9

    held = tmp_path / "heldout.txt"
    held.write_text(" ".join(documents(30, seed=99)))
    res = cli("evaluate", "lm@1", "--data", held, "--json", env=ONE_THREAD_ENV)
    assert res.code == 0, res.output
    report = json.loads(res.stdout)
    assert report["model"]["perplexity"] < 0.5 * report["model"]["unigram_perplexity"]
    table = cli("evaluate", "lm@1", "--data", held, env=ONE_THREAD_ENV)
    assert table.code == 0 and "unigram_perplexity" in table.stdout, table.output


def test_sft_base_can_be_a_hugging_face_directory(cli, tiny_model, tokenizer, tmp_path):
    hf = tmp_path / "my-model"
    tiny_model.save_pretrained(hf)
    tokenizer.save_pretrained(hf)
    out = _train(cli, instructions(tmp_path / "qa.jsonl", n=16), "--task", "sft", "--base", hf, "--max-steps", "3", "--batch-size", "4")
    assert out["version"] == 1 and out["steps"] == 3
    res = cli("models", "--json")
    assert res.code == 0 and "qa" in res.stdout


def test_time_limit_stops_cleanly_and_registers(cli, corpus_dir, tokenizer, workspace, tmp_path):
    from trainyard.registry.workspace import Workspace

    tokenizer.save_pretrained(tmp_path / "tok")  # a given tokenizer: less set-up before the clock matters
    started = time.monotonic()
    out = _train(cli, corpus_dir, "--task", "causal-lm", *TINY, "--tokenizer", tmp_path / "tok", "--name", "timed",
                 "--max-steps", "1000000", "--time-limit", "0.5m")
    elapsed = time.monotonic() - started
    assert out["timed_out"] and 1 <= out["steps"] < 1_000_000 and out["version"] == 1
    assert out["seconds"] < 30  # the training itself stopped inside the limit
    assert elapsed < 30 + 60, f"a 30 s run took {elapsed:.0f} s"  # slack only for set-up and the final evaluation on a loaded machine
    store = Workspace.resolve(workspace).store
    assert any(e["kind"] == "time-limit" for e in store.events(out["run_id"]))
    assert store.get_run(out["run_id"])["status"] == "finished"


def test_time_limit_without_max_steps_plans_the_schedule(corpus_dir, tokenizer, tmp_path, torch_one_thread):
    """The steps that fit the budget are measured and recorded in the run as the first plan, with re-planning on (the
    loop moves the schedule's end as it measures its speed), so the cosine schedule reaches its floor at the deadline."""
    from trainyard.lm.settings import LMSettings
    from trainyard.runs.dispatch import train_language_model
    from trainyard.registry.workspace import Workspace

    ws = tmp_path / "ws"
    tokenizer.save_pretrained(tmp_path / "tok")  # a given tokenizer: less set-up inside the budget
    r = train_language_model(corpus_dir, LMSettings(name="p", size="tiny", context=32, batch_size=8, tokenizer=str(tmp_path / "tok"),
                                                    separator="\n%\n", time_limit=20, samples=0), workspace=ws)
    store = Workspace.resolve(ws).store
    recorded = store.get_run(r.run_id)["config"]["lm"]
    assert recorded["max_steps"] >= 1 and recorded["loop"]["replan"] is True
    lrs = [m["value"] for m in store.metric_history(r.run_id, "lr")]
    assert len(lrs) == r.steps >= 10
    assert lrs[-1] < 0.15 * max(lrs)  # the schedule decayed to its floor (0.1) by the end of the budget


def test_bad_lm_flags_are_user_errors(cli, corpus_dir, tmp_path):
    res = cli("train", instructions(tmp_path / "i.jsonl"), "--task", "sft")
    assert res.code == 2 and "--base" in res.stderr and "Traceback" not in res.output
    res = cli("train", corpus_dir, "--task", "causal-lm", "--time-limit", "soon")
    assert res.code == 2 and "not a duration" in res.stderr
    res = cli("train", corpus_dir, "--task", "causal-lm", "--size", "huge")
    assert res.code == 2 and "huge" in res.stderr and "Traceback" not in res.output


@pytest.mark.slow
def test_kill_9_and_resume_from_the_cli_ends_bit_identical(cli, corpus_dir, tmp_path, workspace):
    import os
    import signal
    import subprocess
    import sys

    import torch
    from safetensors.torch import load_file

    from trainyard.lm.settings import LMSettings

    from trainyard.runs.dispatch import train_language_model
    from trainyard.registry.workspace import Workspace

    ref_ws = tmp_path / "ref"
    reference = train_language_model(corpus_dir, LMSettings(name="k", size="tiny", context=32, batch_size=8, vocab_size=400,
                                                            separator="\n%\n", max_steps=30, lr=3e-3, checkpoint_every=4), workspace=ref_ws)
    args = ["train", corpus_dir, "--task", "causal-lm", *TINY, "--name", "k", "--max-steps", "30", "--lr", "3e-3", "--checkpoint-every", "4"]
    env = {**os.environ, **ONE_THREAD_ENV, "PYTHONPATH": os.path.join(os.path.dirname(__file__), "..", "..", "src"), "TRAINYARD_HOME": str(workspace)}
    proc = subprocess.Popen([sys.executable, "-m", "trainyard", *map(str, args)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not list(workspace.glob("runs/*/checkpoints/step-00000012")):
        assert proc.poll() is None and time.monotonic() < deadline, "the training process ended before its 12th step"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    store = Workspace.resolve(workspace).store
    run_id = store.list_runs()[0]["id"]
    assert store.get_run(run_id)["model_version"] is None  # killed before the end
    res = cli("resume", run_id, "--json", env=ONE_THREAD_ENV)
    assert res.code == 0, res.output
    resumed = json.loads(res.stdout)
    assert resumed["steps"] == reference.steps == 30 and resumed["run_id"] == run_id
    a = load_file(str(ref_ws / "artifacts" / "k" / reference.run_id / "model.safetensors"))
    b = load_file(str(workspace / "artifacts" / "k" / run_id / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert any(e["kind"] == "resume" for e in store.events(run_id))
