"""`trainyard serve` on a document index: /v1/search, streamed /v1/ask with citations, 422s, the query log."""

from __future__ import annotations

import json

import httpx
from raghelp import built, handbook  # noqa: F401  (fixtures)
from servehelp import running_server

from trainyard.serve.app import ServeSettings


def _events(text: str) -> list[tuple[str, str]]:
    out = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        out.append((lines.get("event", "message"), lines["data"]))
    return out


def test_search_and_streamed_ask_with_citations_validation_and_log(built):
    home, result = built
    ids = {c.id for c in result.model.chunks}
    with running_server(ServeSettings(refs=["docs"], workspace=str(home))) as (base, _app):
        r = httpx.post(f"{base}/v1/search", json={"query": "When does the canteen open?", "k": 2}, timeout=60)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["index"] == "docs" and body["results"][0]["path"] == "canteen.html" and len(body["results"]) == 2
        r = httpx.post(f"{base}/v1/search", json={"query": "rotate a key", "mode": "bm25", "path": "hr/*"}, timeout=60)
        assert all(x["path"].startswith("hr/") for x in r.json()["results"])

        with httpx.stream("POST", f"{base}/v1/ask", json={"question": "How do I revoke a leaked API key?"}, timeout=60) as resp:
            assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/event-stream")
            events = _events(resp.read().decode())
        kinds = [k for k, _ in events]
        assert kinds[0] == "passages" and "done" in kinds and events[-1][1] == "[DONE]"
        passages = json.loads(events[0][1])
        done = json.loads(next(d for k, d in events if k == "done"))
        assert done["answered"] and done["citations"] and {c["id"] for c in done["citations"]} <= ids
        assert {c["id"] for c in done["citations"]} <= {p["id"] for p in passages}
        streamed = "".join(json.loads(d)["text"] for k, d in events if k == "message" and d != "[DONE]")
        assert streamed == done["answer"] and "revoke" in streamed.lower()

        r = httpx.post(f"{base}/v1/ask", json={"question": "What is the boiling point of mercury?", "stream": False}, timeout=60)
        assert r.status_code == 200 and r.json()["answered"] is False and r.json()["answer"] == "no relevant passage found"

        for bad in ({}, {"query": ""}, {"query": "x", "k": 0}, {"query": "x", "mode": "fuzzy"}, {"query": 3}):
            assert httpx.post(f"{base}/v1/search", json=bad, timeout=30).status_code == 422, bad
        assert httpx.post(f"{base}/v1/ask", json={"question": "x", "k": 500}, timeout=30).status_code == 422
        assert httpx.post(f"{base}/v1/search", content=b"not json", headers={"content-type": "application/json"}, timeout=30).status_code == 422
        assert httpx.post(f"{base}/v1/search", json={"query": "x", "index": "other"}, timeout=30).status_code == 404
        indexes = httpx.get(f"{base}/v1/indexes", timeout=30).json()["indexes"]
        assert indexes[0]["name"] == "docs" and indexes[0]["chunks"] == len(ids)
        assert 'endpoint="search"' in httpx.get(f"{base}/metrics", timeout=30).text
        assert {"/v1/search", "/v1/ask"} <= set(httpx.get(f"{base}/openapi.json", timeout=30).json()["paths"])
    from trainyard.registry.workspace import Workspace

    logged = Workspace.resolve(home).store.list_predictions("docs")
    assert len(logged) == 4
    ask_rows = [row for row in logged if row["inputs"]["endpoint"] == "ask"]
    assert {row["outputs"]["answered"] for row in ask_rows} == {True, False}
    assert any(row["inputs"]["question"] == "How do I revoke a leaked API key?" for row in ask_rows)


ON_TOPIC = ["How do I rotate an API key?", "When does the canteen open?", "How many vacation days do I get?", "Can I pay with cash?",
            "How often are plants watered?", "How long are backups kept?", "How do I request leave?", "What if a key leaks?"]
OFF_TOPIC = ["What is the boiling point of mercury?", "Who won the 1954 football world cup?", "How do volcanoes form?",
             "What is the capital of Mongolia?", "Recipe for sourdough bread", "How far away is the moon?",
             "Best hiking trails in Patagonia", "How do bees make honey?"]


def test_monitor_reports_unanswered_share_and_query_drift_from_the_log(built, tmp_path, cli_inproc):
    import shutil

    home = tmp_path / "ws"
    shutil.copytree(built[0], home)
    with running_server(ServeSettings(refs=["docs"], workspace=str(home))) as (base, _app):
        for q in ON_TOPIC + OFF_TOPIC:  # people start asking about things the handbook does not cover
            assert httpx.post(f"{base}/v1/ask", json={"question": q, "stream": False}, timeout=60).status_code == 200
    r = cli_inproc("-w", home, "monitor", "docs", "--last", "16", "--json")  # (the copied log may hold other tests' queries)
    report = json.loads(r.stdout)
    assert r.code == 2 and report["queries"] == 16
    assert report["reference"]["unanswered_share"] == 0.0 and report["current"]["unanswered_share"] >= 0.75
    assert report["current"]["median_best_cosine"] < report["reference"]["median_best_cosine"] - 0.2
    assert any("query drift" in f for f in report["findings"]) and any("no answer" in f for f in report["findings"])


def test_a_language_model_writes_the_answer_in_the_cli_and_the_server(built, tmp_path, cli_inproc):
    """A tiny untrained language model (its text is noise): what is checked is the wiring: the prompt trimmed to
    its context, the answer streamed from it, marked as generated."""
    import shutil

    from lmhelp import documents

    from trainyard.lm.model import build_model
    from trainyard.lm.tokenizer import train_tokenizer

    tok = train_tokenizer(documents(60), vocab_size=300)
    lm_dir = tmp_path / "lm"
    build_model("tiny", vocab_size=len(tok), context=256, eos_id=tok.eos_token_id, pad_id=tok.pad_token_id).save_pretrained(lm_dir)
    tok.save_pretrained(lm_dir)
    home = tmp_path / "ws"
    shutil.copytree(built[0], home)
    r = cli_inproc("-w", home, "ask", "docs", "How do I rotate an API key?", "--generator", lm_dir, "--max-tokens", "8", "--json")
    assert r.code == 0, r.output
    out = json.loads(r.stdout)
    assert out["method"] == "generated" and out["answered"] and 1 <= len(out["passages"]) < 5  # trimmed to fit 256 tokens
    with running_server(ServeSettings(refs=["docs"], workspace=str(home), rag_generator=str(lm_dir))) as (base, _app):
        with httpx.stream("POST", f"{base}/v1/ask", json={"question": "How do I rotate an API key?"}, timeout=120) as resp:
            events = _events(resp.read().decode())
    done = json.loads(next(d for k, d in events if k == "done"))
    assert done["method"] == "generated" and done["answered"]
