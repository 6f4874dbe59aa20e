"""The language-model commands end to end (subprocess CLI on a temporary workspace)."""

from __future__ import annotations

import json

from trainyard.lm.artifact import LanguageModel
from lmhelp import ONE_THREAD_ENV, corpus_dir, one_torch_thread, tiny_model, tokenizer  # noqa: F401  (fixtures)


def test_tokenizer_train_cli(cli, corpus_dir, tmp_path):
    out = tmp_path / "tok"
    res = cli("tokenizer", "train", corpus_dir, "--vocab-size", "350", "-o", out, "--doc-separator", "\\n%\\n", "--json", env=ONE_THREAD_ENV)
    assert res.code == 0, res.output
    summary = json.loads(res.stdout)
    assert 300 < summary["vocab_size"] <= 350 and summary["kept"] == 240
    assert (out / "tokenizer.json").is_file() and (out / "tokenizer_config.json").is_file()
    bad = cli("tokenizer", "train", tmp_path / "missing", "-o", out)
    assert bad.code == 2 and "does not exist" in bad.stderr and "Traceback" not in bad.output


def test_generate_cli_from_local_directory(cli, tiny_model, tokenizer, tmp_path):
    lm = LanguageModel(tiny_model, tokenizer)
    tiny_model.save_pretrained(tmp_path / "hf")
    tokenizer.save_pretrained(tmp_path / "hf")
    expected = lm.generate("The cat", max_tokens=15, temperature=0, stop_at_eos=True).text
    res = cli("generate", tmp_path / "hf", "The cat", "--max-tokens", "15", "--temperature", "0", env=ONE_THREAD_ENV)
    assert res.code == 0, res.output
    assert res.stdout.rstrip("\n") == "The cat" + expected
    assert "tokens/s" in res.stderr
    bad = cli("generate", "nosuchmodel", "hi")
    assert bad.code == 2 and "No model named" in bad.stderr


def test_evaluate_dispatches_language_models(cli_inproc, workspace, tiny_model, tokenizer, tmp_path):
    from lmhelp import documents

    from trainyard.lm.artifact import register_language_model
    from trainyard.registry.workspace import Workspace

    ws = Workspace.resolve()
    register_language_model(ws, "story", ws.store.create_run("story", kind="language-model"), LanguageModel(tiny_model, tokenizer), {"task": "causal-lm"})
    held = tmp_path / "held.txt"
    held.write_text(" ".join(documents(5, seed=7)))
    res = cli_inproc("evaluate", "story@1", "--data", held, "--json")
    assert res.code == 0, res.output
    report = json.loads(res.stdout)
    assert report["model"]["scored"] == "text" and report["model"]["tokens"] > 50
    assert 1 < report["model"]["perplexity"] < 2 * len(tokenizer) and 0 <= report["model"]["accuracy"] <= 1
    assert report["samples"] and "compare" not in report
