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
