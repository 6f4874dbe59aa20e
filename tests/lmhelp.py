"""Helpers for the language-model tests: a tiny synthetic corpus, a tokenizer trained on it, a tiny model (fixtures)."""

from __future__ import annotations

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
