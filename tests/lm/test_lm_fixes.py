"""Language-model fixes (issue 17, item 6): the documented curl reaches /v1/generate, each task's own metric in the
run list, no control characters in generated text, gradient checkpointing, and --quantize refused without CUDA."""

from __future__ import annotations

import json
import subprocess

import httpx
import pytest
import torch
from lmhelp import corpus_dir, one_torch_thread, tiny_model, tokenizer  # noqa: F401  (fixtures)
from servehelp import running_server

from trainyard.lm.artifact import LanguageModel, register_language_model
from trainyard.lm.generate import Sampling, generate
from trainyard.lm.labels import printable, task_metric
from trainyard.registry.workspace import Workspace
from trainyard.serve.app import ServeSettings


def test_generate_accepts_json_sent_as_a_form_like_curl_does(workspace, tiny_model, tokenizer):
    ws = Workspace.resolve()
    run_id = ws.store.create_run("story", kind="language-model", task="causal-lm")
    register_language_model(ws, "story", run_id, LanguageModel(tiny_model, tokenizer), {"task": "causal-lm"})
    body = json.dumps({"prompt": "The owl", "max_tokens": 5, "temperature": 0})
    with running_server(ServeSettings(refs=["story"], workspace=str(workspace), poll_interval=0)) as (url, _):
        as_json = httpx.post(f"{url}/v1/generate", content=body, headers={"content-type": "application/json"}, timeout=60)
        as_form = httpx.post(f"{url}/v1/generate", content=body, headers={"content-type": "application/x-www-form-urlencoded"}, timeout=60)
        assert as_json.status_code == as_form.status_code == 200
        assert as_form.json()["text"] == as_json.json()["text"]
        # curl itself, exactly as docs/lm.md shows it (-d sends application/x-www-form-urlencoded)
        curl = subprocess.run(["curl", "-sN", f"{url}/v1/generate", "-d", json.dumps({"prompt": "The owl", "max_tokens": 5, "stream": True})],
                              capture_output=True, text=True, timeout=60)
        assert curl.returncode == 0 and "data: [DONE]" in curl.stdout, curl.stdout
        bad = httpx.post(f"{url}/v1/generate", content=b"prompt=The+owl", headers={"content-type": "application/x-www-form-urlencoded"}, timeout=30)
        assert bad.status_code == 422 and "not JSON" in bad.text
        invalid = httpx.post(f"{url}/v1/generate", content=json.dumps({"prompt": "x", "top_p": 0}), timeout=30)
        assert invalid.status_code == 422 and "top_p" in invalid.text
        schema = httpx.get(f"{url}/openapi.json", timeout=30).json()["paths"]["/v1/generate"]["post"]
        assert "prompt" in schema["requestBody"]["content"]["application/json"]["schema"]["properties"]


def test_each_task_is_labelled_by_its_own_metric():
    assert task_metric("causal-lm") == ("perplexity", "val_perplexity")
    assert task_metric("preference", "dpo") == ("win_rate", "val_win_rate")
    assert task_metric("preference", "rloo") == ("reward", "val_reward")
    assert task_metric("reward") == ("accuracy", "val_accuracy")


def test_generated_text_has_no_control_characters(tiny_model, tokenizer):
    assert printable("The cat\x05 sat\x00 on\tthe\nmat\x7f") == "The cat sat on\tthe\nmat"
    control = [t for t in range(len(tokenizer)) if any(ord(c) < 32 and c not in "\n\t" for c in tokenizer.decode([t]))]
    assert control, "the byte-level tokenizer has byte tokens for control characters"
    greedy = Sampling(max_tokens=5, temperature=0, stop_at_eos=False)
    favourite = generate(tiny_model, tokenizer, "The cat", greedy).token_ids[0]
    with torch.no_grad():  # make the model say a control byte: its output row becomes a scaled copy of the favourite's
        head = tiny_model.get_output_embeddings()
        saved = head.weight.detach().clone()
        head.weight[control[0]] = 10 * head.weight[favourite]
        try:
            out = generate(tiny_model, tokenizer, "The cat", greedy)
        finally:
            head.weight.copy_(saved)
    assert control[0] in out.token_ids
    assert not any(ord(c) < 32 and c not in "\n\t" for c in out.text)


def test_gradient_checkpointing_gives_the_same_gradients(tiny_model, tokenizer):
    import copy

    from trainyard.lm.memory import use_gradient_checkpointing

    ids = torch.randint(0, len(tokenizer), (2, 16), generator=torch.Generator().manual_seed(0))
    grads = []
    for checkpointing in (False, True):
        model = copy.deepcopy(tiny_model).train()
        if checkpointing:
            use_gradient_checkpointing(model)
            assert any(getattr(m, "gradient_checkpointing", False) for m in model.modules())
        model(input_ids=ids, labels=ids).loss.backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
    assert torch.allclose(grads[0], grads[1], atol=1e-6)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_quantize_refused_cleanly_without_cuda(cli, corpus_dir, tmp_path):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps({"prompt": "Where?", "response": "Here."}) + "\n")
    res = cli("train", pairs, "--task", "sft", "--base", "lm@1", "--lora", "--quantize", "4bit")
    assert res.code == 2 and "Traceback" not in res.output
    assert "CUDA" in res.stderr and "bitsandbytes" in res.stderr
    res = cli("train", pairs, "--task", "sft", "--base", "lm@1", "--quantize", "4bit")  # without LoRA
    assert res.code == 2 and "--lora" in res.stderr


def test_dpo_run_is_listed_by_its_win_rate_and_trains_with_gradient_checkpointing(cli, workspace, corpus_dir, tmp_path):
    from lmhelp import preferences

    from trainyard.lm.settings import LMSettings
    from trainyard.runs.dispatch import train_language_model

    tiny = dict(size="tiny", context=32, batch_size=8, vocab_size=400, separator="\n%\n", samples=1)
    train_language_model(corpus_dir, LMSettings(name="base", max_steps=10, **tiny), workspace=workspace)
    dpo = train_language_model(preferences(tmp_path / "prefs.jsonl"), LMSettings(
        task="preference", base="base@1", name="dpo", max_steps=3, context=48, batch_size=8, val_fraction=0.2, samples=1,
        gradient_checkpointing=True), workspace=workspace)
    assert dpo.metric == "win_rate" and dpo.steps == 3
    # the loop scored the final weights already: the run does not spend a second evaluation on them
    store = Workspace.resolve(workspace).store
    assert [m["step"] for m in store.metric_history(dpo.run_id, "val_win_rate")].count(3) == 1
    res = cli("runs", "--json")
    assert res.code == 0, res.output
    rows = {r["name"]: r for r in json.loads(res.stdout)}
    assert rows["base"]["metric"] == "perplexity" and rows["base"]["best_score"] > 1
    assert rows["dpo"]["metric"] == "win_rate" and rows["dpo"]["best_score"] == pytest.approx(dpo.metrics["val_win_rate"])
    models = {m["name"]: m for m in Workspace.resolve(workspace).store.list_models()}
    assert models["dpo"]["metric"] == "win_rate"
    table = cli("runs")
    assert "perplexity" in table.stdout and "win_rate" in table.stdout


def test_the_whole_command_ends_within_its_time_limit(cli, corpus_dir, tokenizer, tmp_path):
    """The clock starts with the process: tokenizer, shards, timing, training, the final evaluation, samples and
    registration all fit in --time-limit (5% and two seconds of slack for the interpreter's own start)."""
    import time

    from lmhelp import ONE_THREAD_ENV

    tokenizer.save_pretrained(tmp_path / "tok")
    started = time.monotonic()
    res = cli("train", corpus_dir, "--task", "causal-lm", "--size", "tiny", "--context", "32", "--batch-size", "8",
              "--tokenizer", tmp_path / "tok", "--doc-separator", "\\n%\\n", "--time-limit", "20", "--json", env=ONE_THREAD_ENV)
    elapsed = time.monotonic() - started
    assert res.code == 0, res.output
    out = json.loads(res.stdout)
    # the property is the end on time; how many steps fit depends on the machine's load (1 step at load 6 on 2 cores)
    assert out["steps"] >= 1 and elapsed <= 20 * 1.05 + 2, f"a 20 s limit took {elapsed:.1f} s"
