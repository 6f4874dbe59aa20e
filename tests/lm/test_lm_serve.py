"""Language models behind the real HTTP server: /v1/generate as JSON and streamed as server-sent events."""

from __future__ import annotations

import json

import httpx
from lmhelp import corpus_dir, one_torch_thread, tiny_model, tokenizer  # noqa: F401  (fixtures)
from servehelp import running_server

from trainyard.lm.artifact import LanguageModel, register_language_model
from trainyard.serve.app import ServeSettings
from trainyard.registry.workspace import Workspace


def test_generate_json_and_sse_stream_on_loopback(workspace, tiny_model, tokenizer):
    ws = Workspace.resolve()
    run_id = ws.store.create_run("story", kind="language-model", task="causal-lm")
    lm = LanguageModel(tiny_model, tokenizer)
    register_language_model(ws, "story", run_id, lm, {"task": "causal-lm"})
    expected = lm.generate("The owl", max_tokens=20, temperature=0, stop_at_eos=False)
    with running_server(ServeSettings(refs=["story"], workspace=str(workspace), poll_interval=0)) as (url, _):
        body = {"prompt": "The owl", "max_tokens": 20, "temperature": 0}
        plain = httpx.post(f"{url}/v1/generate", json=body, timeout=60).json()
        assert plain["model"] == "story" and plain["version"] == 1 and plain["tokens"] >= 1
        assert expected.text.startswith(plain["text"])  # stops at EOS at the latest, identical up to there
        pieces, done = [], None
        with httpx.stream("POST", f"{url}/v1/generate", json={**body, "stream": True}, timeout=60) as resp:
            assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream")
            event = None
            for line in resp.iter_lines():
                if line.startswith("event:"):
                    event = line.split(":", 1)[1].strip()
                elif line.startswith("data:"):
                    data = line.split(":", 1)[1].strip()
                    if data == "[DONE]":
                        break
                    if event == "done":
                        done = json.loads(data)
                    else:
                        pieces.append(json.loads(data)["text"])
                    event = None
        assert "".join(pieces) == plain["text"] and len(pieces) >= 2
        assert done["tokens"] == plain["tokens"] and done["finish"] == plain["finish"]
        assert httpx.post(f"{url}/v1/generate", json={"prompt": "x", "model": "nope"}, timeout=30).status_code == 404
        assert httpx.post(f"{url}/v1/generate", json={"prompt": "x", "top_p": 0}, timeout=30).status_code == 422
        assert httpx.post(f"{url}/v1/generate", json={"prompt": "x", "repetition_penalty": 0}, timeout=30).status_code == 422
        no_loops = lm.generate("The owl", max_tokens=20, temperature=0, no_repeat_ngram=2, repetition_penalty=1.3)
        served = httpx.post(f"{url}/v1/generate", json={**body, "no_repeat_ngram": 2, "repetition_penalty": 1.3}, timeout=60).json()
        assert served["text"] == no_loops.text and served["text"] != plain["text"]
        listed = httpx.get(f"{url}/v1/language-models", timeout=30).json()["models"]
        assert listed[0]["name"] == "story"
