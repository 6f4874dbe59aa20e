"""Helpers for the language-model tests: a tiny synthetic corpus, a tokenizer trained on it, a tiny model (fixtures)."""

from __future__ import annotations

import json
import random

import pytest

ANIMALS = ["cat", "dog", "bird", "fox", "horse", "mouse", "owl", "frog"]
PLACES = ["mat", "hill", "tree", "barn", "river", "field", "road", "house"]
VERBS = ["sat on", "ran to", "looked at", "jumped over", "slept near", "walked past"]


def sentences(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [f"The {rng.choice(ANIMALS)} {rng.choice(VERBS)} the {rng.choice(PLACES)}." for _ in range(n)]


def documents(n: int = 200, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(sentences(rng.randint(3, 6), seed * 10_000 + i)) for i in range(n)]


@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    docs = documents(240)
    for i in range(4):
        (root / f"part{i}.txt").write_text("\n%\n".join(docs[i * 60:(i + 1) * 60]))
    return root


@pytest.fixture(scope="session")
def tokenizer(corpus_dir):
    from trainyard.lm.tokenizer import train_tokenizer

    return train_tokenizer(documents(240), vocab_size=400)


@pytest.fixture(scope="session")
def tiny_model(tokenizer):
    from trainyard.lm.model import build_model

    return build_model("tiny", vocab_size=len(tokenizer), context=64, eos_id=tokenizer.eos_token_id, pad_id=tokenizer.pad_token_id)


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny models run fastest on one thread, and far faster on a loaded machine (no spinning threads)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


ONE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def instructions(path, n: int = 40, seed: int = 0):
    """A prompt/response JSONL whose every answer is 'It is on the mat.' (SFT must learn to say it)."""
    rng = random.Random(seed)
    animals = ["cat", "dog", "owl", "fox", "frog", "horse"]
    return _jsonl(path, [{"prompt": f"Where is the {rng.choice(animals)}?", "response": "It is on the mat."} for _ in range(n)])


def preferences(path, n: int = 40, seed: int = 1):
    """Prompt/chosen/rejected JSONL: 'sat on the mat' preferred over 'ran to the road'."""
    rng = random.Random(seed)
    return _jsonl(path, [{"prompt": f"Tell me about the {a}.", "chosen": f"The {a} sat on the mat.", "rejected": f"The {a} ran to the road."}
                         for a in (rng.choice(ANIMALS) for _ in range(n))])


def _jsonl(path, rows):
    path.write_text("\n".join(json.dumps(r) for r in rows))
    return path
