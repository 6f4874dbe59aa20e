"""Reward model (--task reward, Bradley-Terry) and policy gradient (--task preference --method rloo) on tiny models."""

from __future__ import annotations

import json
import random

import pytest
from lmhelp import ANIMALS, corpus_dir, one_torch_thread  # noqa: F401  (fixtures)

from trainyard.errors import ConfigError, NotFoundError
from trainyard.lm.train import LMSettings, train_language_model

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
    assert r.metrics["val_accuracy"] >= 0.9 > r.metrics["val_accuracy_before"] - 0.5  # well above chance on 20 held-out pairs
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
              "--rollouts", "2", "--max-new-tokens", "6", "--batch-size", "2", "--context", "32", "--json", env=env)
    assert res.code == 0, res.output
    out = json.loads(res.stdout)
    assert out["steps"] == 2 and {"val_reward", "val_reward_before", "val_kl"} <= set(out["metrics"])
    res = cli("train", prefs, "--task", "preference", "--method", "rloo", "--base", "corpus@1", "--reward-model", "corpus@1", env=env)
    assert res.code == 2 and "not a reward model" in res.stderr and "Traceback" not in res.output
