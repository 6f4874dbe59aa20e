"""Reward model (--task reward, Bradley-Terry) and policy gradient (--task preference --method rloo) on tiny models."""

from __future__ import annotations

import json
import random

import pytest
from lmhelp import ANIMALS, corpus_dir, one_torch_thread  # noqa: F401  (fixtures)

from trainyard.errors import ConfigError, NotFoundError
from trainyard.lm.settings import LMSettings
from trainyard.runs.dispatch import train_language_model

TINY = dict(size="tiny", context=32, batch_size=8, vocab_size=400, separator="\n%\n", samples=1, checkpoint_every=10)


@pytest.fixture(scope="module")
def pretrained(corpus_dir, tmp_path_factory, one_torch_thread):
    """A tiny model pre-trained on the synthetic corpus (sentences like 'The owl sat on the barn.'), registered as corpus@1."""
    ws = tmp_path_factory.mktemp("ws-rm")
    train_language_model(corpus_dir, LMSettings(name="corpus", max_steps=120, epochs=100, eval_every=60, lr=3e-3, **TINY), workspace=ws)
    return ws


def mat_preferences(path, n: int = 80, seed: int = 3):
    """A clear signal: a response that ends at the mat is preferred to any other place (both are corpus-like sentences)."""
    rng = random.Random(seed)
    places = ["hill", "tree", "barn", "river", "field", "road", "house"]
    rows = []
    for _ in range(n):
        a = rng.choice(ANIMALS)
        rows.append({"prompt": f"Tell me about the {a}.", "chosen": f"The {a} sat on the mat.", "rejected": f"The {a} sat on the {rng.choice(places)}."})
    path.write_text("\n".join(json.dumps(r) for r in rows))
    return path


@pytest.fixture(scope="module")
def reward_model(pretrained, tmp_path_factory):
    data = mat_preferences(tmp_path_factory.mktemp("prefs") / "prefs.jsonl")
    result = train_language_model(data, LMSettings(task="reward", base="corpus@1", name="rm", max_steps=60, lr=1e-3, batch_size=8,
                                                   val_fraction=0.25, context=32), workspace=pretrained)
    return result


def test_reward_model_ranks_held_out_pairs(pretrained, reward_model, tmp_path):
    import trainyard
    from trainyard.lm.reward import RewardModel, load_reward_model

    r = reward_model
    assert r.metrics["val_accuracy"] >= 0.9  # well above chance on 20 held-out pairs
    assert r.metrics["val_accuracy"] > r.metrics["val_accuracy_before"]  # and learned (the untrained head's score)
    assert r.metrics["val_margin"] > 0 and "val_perplexity" not in r.metrics
    rm = trainyard.load(f"rm@{r.version}", workspace=pretrained)
    assert isinstance(rm, RewardModel) and rm.meta["kind"] == "reward-model"
    # unseen sentences: the mat beats other places for animals never paired with them in training
    good, bad = rm.score(["Tell me about the owl.", "Tell me about the frog."], ["The owl sat on the mat.", "The frog sat on the mat."]), \
        rm.score(["Tell me about the owl.", "Tell me about the frog."], ["The owl sat on the river.", "The frog sat on the hill."])
    assert all(g > b for g, b in zip(good, bad))
    with pytest.raises(NotFoundError, match="not a reward model"):
        load_reward_model("corpus@1", pretrained)


def test_rloo_raises_mean_reward_on_held_out_prompts(pretrained, reward_model, tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("\n".join(json.dumps({"prompt": f"Tell me about the {a}."}) for a in ANIMALS * 4))
    s = LMSettings(task="preference", method="rloo", base="corpus@1", reward_model=f"rm@{reward_model.version}", name="policy",
                   max_steps=30, lr=1e-3, batch_size=4, rollouts=4, max_new_tokens=12, beta=0.02, context=32, val_fraction=0.25, samples=1)
    r = train_language_model(prompts, s, workspace=pretrained)
    assert r.steps == 30
    assert r.metrics["val_reward"] > r.metrics["val_reward_before"] + 0.5, r.metrics
    assert r.metrics["val_kl"] > 0 and "val_perplexity" not in r.metrics
    with pytest.raises(ConfigError, match="reward model"):
        train_language_model(prompts, LMSettings(task="preference", method="rloo", base="corpus@1"), workspace=pretrained)


@pytest.mark.slow
def test_reward_and_rloo_from_the_cli(cli, pretrained, tmp_path):
    from lmhelp import ONE_THREAD_ENV

    env = {**ONE_THREAD_ENV, "TRAINYARD_HOME": str(pretrained)}
    prefs = mat_preferences(tmp_path / "cli-prefs.jsonl", n=40, seed=5)
    res = cli("train", prefs, "--task", "reward", "--base", "corpus@1", "--name", "clirm", "--max-steps", "8", "--lr", "1e-3",
              "--batch-size", "8", "--context", "32", "--json", env=env)
    assert res.code == 0, res.output
    out = json.loads(res.stdout)
    assert out["name"] == "clirm" and "val_accuracy" in out["metrics"] and out["samples"] == []
    held = mat_preferences(tmp_path / "held.jsonl", n=10, seed=11)
    res = cli("evaluate", "clirm@1", "--data", held, "--json", env=env)
    assert res.code == 0, res.output
    report = json.loads(res.stdout)
    assert report["pairs"] == 10 and 0 <= report["accuracy"] <= 1
    res = cli("train", prefs, "--task", "preference", "--method", "rloo", "--base", "corpus@1", "--reward-model", "clirm@1", "--max-steps", "2",
              "--rollouts", "2", "--max-new-tokens", "6", "--batch-size", "2", "--context", "32", "--lora", "--lr", "1e-2", "--json", env=env)
    assert res.code == 0, res.output
    out = json.loads(res.stdout)  # with --lora the reference is the same weights with the adapter switched off
    assert out["steps"] == 2 and {"val_reward", "val_reward_before", "val_kl"} <= set(out["metrics"]) and out["metrics"]["val_kl"] != 0
    res = cli("train", prefs, "--task", "preference", "--method", "rloo", "--base", "corpus@1", "--reward-model", "corpus@1", env=env)
    assert res.code == 2 and "not a reward model" in res.stderr and "Traceback" not in res.output


def test_evaluate_scores_preference_pairs(pretrained, tmp_path):
    """`trainyard evaluate` on prompt/chosen/rejected JSONL: the margin is log p(chosen) - log p(rejected); swapping the
    two answers negates it and turns the win rate around."""
    import trainyard
    from trainyard.lm.evaluate import evaluate_language_model

    lm = trainyard.load("corpus@1", workspace=pretrained)
    prefs = mat_preferences(tmp_path / "p.jsonl", n=12, seed=21)
    rows = [json.loads(line) for line in prefs.read_text().splitlines()]
    swapped = tmp_path / "swapped.jsonl"
    swapped.write_text("\n".join(json.dumps({**r, "chosen": r["rejected"], "rejected": r["chosen"]}) for r in rows))
    a = evaluate_language_model(lm, prefs, compare=lm, n_samples=1)
    b = evaluate_language_model(lm, swapped, n_samples=1)["model"]
    assert a["model"]["scored"] == "pairs" and a["model"]["examples"] == 12 and a["compare"]["margin"] == a["model"]["margin"]
    assert a["model"]["margin"] == pytest.approx(a["model"]["chosen_logp"] - a["model"]["rejected_logp"], abs=1e-4)
    assert b["margin"] == pytest.approx(-a["model"]["margin"], abs=1e-4) and a["model"]["margin"] != 0
    assert a["model"]["win_rate"] + b["win_rate"] == pytest.approx(1.0)  # no ties between different sentences


@pytest.mark.slow
def test_rloo_kill_9_and_resume_ends_bit_identical(cli, pretrained, reward_model, tmp_path):
    """Sampling is seeded per batch from the loop's batch generator, so a resumed policy-gradient run draws the same
    completions and ends with the same weights as an uninterrupted one."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import torch
    from lmhelp import ONE_THREAD_ENV
    from safetensors.torch import load_file

    from trainyard.registry.workspace import Workspace

    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("\n".join(json.dumps({"prompt": f"Tell me about the {a}."}) for a in ANIMALS * 2))
    opts = dict(task="preference", method="rloo", base="corpus@1", reward_model=f"rm@{reward_model.version}", max_steps=8, lr=1e-3,
                batch_size=2, rollouts=2, max_new_tokens=6, context=32, checkpoint_every=2, samples=0)
    reference = train_language_model(prompts, LMSettings(name="rl-ref", **opts), workspace=pretrained)
    args = ["train", prompts, "--task", "preference", "--method", "rloo", "--base", "corpus@1", "--reward-model", f"rm@{reward_model.version}",
            "--max-steps", "8", "--lr", "1e-3", "--batch-size", "2", "--rollouts", "2", "--max-new-tokens", "6", "--context", "32",
            "--checkpoint-every", "2", "--name", "rl-kill"]
    env = {**os.environ, **ONE_THREAD_ENV, "PYTHONPATH": os.path.join(os.path.dirname(__file__), "..", "..", "src"), "TRAINYARD_HOME": str(pretrained)}
    runs_before = set(pretrained.glob("runs/*"))
    proc = subprocess.Popen([sys.executable, "-m", "trainyard", *map(str, args)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not [r for r in set(pretrained.glob("runs/*")) - runs_before if (r / "checkpoints" / "step-00000004").exists()]:
        assert proc.poll() is None and time.monotonic() < deadline, "the training process ended before its 4th step"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    run_id = next(iter(set(pretrained.glob("runs/*")) - runs_before)).name
    res = cli("resume", run_id, "--json", env={**ONE_THREAD_ENV, "TRAINYARD_HOME": str(pretrained)})
    assert res.code == 0, res.output
    assert json.loads(res.stdout)["steps"] == reference.steps == 8
    a = load_file(str(pretrained / "artifacts" / "rl-ref" / reference.run_id / "model.safetensors"))
    b = load_file(str(pretrained / "artifacts" / "rl-kill" / run_id / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert any(e["kind"] == "resume" for e in Workspace.resolve(pretrained).store.events(run_id))
