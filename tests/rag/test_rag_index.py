"""An index over a small handbook: retrieval, citations, the no-answer path, incremental update, encoder
mismatch, evaluation, and the CLI's answers to bad input (exit 2)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from raghelp import build_index, built, handbook, random_encoder  # noqa: F401  (fixtures)

from trainyard.rag.answer import NO_ANSWER, ask, supported_share
from trainyard.rag.retrieve import EncoderMismatch, open_retriever


@pytest.fixture(scope="module")
def retriever(built):
    home, _ = built
    return open_retriever("docs", workspace=home, threads=1)


def test_index_is_registered_hash_verified_and_retrieves_by_every_mode(built, retriever):
    home, result = built
    meta = result.model.meta
    assert result.version == 1 and meta["stats"]["files"] == 5 and {p["path"] for p in meta["problems"]} == {"empty.md", "broken.txt", "ops/scan.pdf"}
    assert home.joinpath("trainyard.db").exists() and result.metrics["chunks"] == len(result.model)
    assert retriever.index.vectors.shape == (len(retriever.index), 384)
    assert np.allclose(np.linalg.norm(retriever.index.vectors, axis=1), 1, atol=1e-4)
    for mode in ("hybrid", "bm25", "dense"):
        hits = retriever.search("How do I rotate an API key?", k=3, mode=mode)
        assert hits[0].chunk.path == "ops/keys.md" and hits[0].chunk.heading == "Rotating API keys", mode
    assert retriever.search("nightly database backups", k=1)[0].chunk.path == "ops/backups.pdf"
    only_hr = retriever.search("How do I rotate an API key?", k=5, path="hr/*")
    assert only_hr and {h.chunk.path for h in only_hr} == {"hr/vacation.rst"}
    meta_file = next((home / "artifacts" / "docs").iterdir()) / "vectors.npy"
    meta_file.write_bytes(meta_file.read_bytes()[:-4] + b"\0\0\0\0")  # tampering is refused on the next load
    from trainyard.errors import ArtifactError

    with pytest.raises(ArtifactError, match="altered"):
        open_retriever("docs", workspace=home)
    meta_file.write_bytes(meta_file.read_bytes())  # (restore below for the other tests)
    np.save(meta_file, retriever.index.vectors, allow_pickle=False)


def test_answers_cite_real_passages_and_unrelated_questions_get_no_answer(retriever):
    a = ask(retriever, "How many vacation days do employees get per year?")
    assert a.answered and a.method == "extractive" and a.best_cosine >= a.threshold
    assert "25 days of paid vacation" in a.text
    for cid in a.citations:
        assert cid in retriever.index.by_id and f"[{cid}]" in a.text  # every citation names a real passage of the index...
    for line in a.text.splitlines():  # ...and every cited sentence is in the passage it cites
        sentence, cid = line.rsplit(" [", 1)
        assert sentence in retriever.index.by_id[cid.rstrip("]")].text
    assert supported_share(a) == 1.0
    none = ask(retriever, "What is the boiling point of mercury in kelvin?")
    assert not none.answered and none.text == NO_ANSWER and none.citations == [] and none.best_cosine < none.threshold
    assert supported_share(none) is None
    strict = ask(retriever, "How many vacation days do employees get per year?", threshold=0.99)
    assert not strict.answered


def test_a_generator_gets_the_passages_and_its_citations_are_checked(retriever):
    seen = {}

    def generator(prompt):
        seen["prompt"] = prompt
        hit = retriever.search("rotate API keys", k=1)[0]
        yield f"Press Rotate in the admin console [{hit.chunk.id}]. "
        yield "Also see [ffffffffffffffff]."

    a = ask(retriever, "How do I rotate API keys?", generator=generator)
    assert a.method == "generated" and "Question: How do I rotate API keys?" in seen["prompt"]
    assert all(f"[{h.chunk.id}]" in seen["prompt"] for h in a.passages)
    assert a.citations == [retriever.search("rotate API keys", k=1)[0].chunk.id]
    assert a.invalid_citations == ["ffffffffffffffff"]
    assert supported_share(a) == 0.5  # the second sentence cites nothing that was given


def test_update_embeds_only_new_and_changed_files_and_drops_deleted(built, handbook, tmp_path):
    home, first = built
    docs = tmp_path / "docs"
    shutil.copytree(handbook, docs)
    (docs / "plants.txt").unlink()
    (docs / "hr" / "vacation.rst").write_text((docs / "hr" / "vacation.rst").read_text().replace("25 days", "30 days"))
    (docs / "ops" / "deploy.md").write_text("# Deploying\n\nDeploys go out on Tuesdays after the change review.\n")
    result = build_index("docs", docs, home, update=True)
    s = result.model.meta["stats"]
    assert result.version == 2
    assert s["added"] == ["ops/deploy.md"] and s["changed"] == ["hr/vacation.rst"] and s["removed"] == ["plants.txt"]
    old = {c.id: c for c in first.model.chunks}
    new = {c.id: c for c in result.model.chunks}
    assert s["embedded"] == sum(c.path in ("ops/deploy.md", "hr/vacation.rst") for c in new.values())
    assert s["reused"] == sum(c.path in ("ops/keys.md", "canteen.html", "ops/backups.pdf") for c in new.values())
    assert not any(c.path == "plants.txt" for c in new.values())
    for cid, c in new.items():  # passages of unchanged files keep their ids and their exact vectors
        if c.path in ("ops/keys.md", "canteen.html", "ops/backups.pdf"):
            assert cid in old
            i_new = result.model.chunks.index(c)
            i_old = first.model.chunks.index(old[cid])
            assert np.array_equal(result.model.vectors[i_new], first.model.vectors[i_old]), (c.path, i_new, i_old, s)
    r2 = open_retriever("docs@2", workspace=home, threads=1)
    assert "30 days" in ask(r2, "How many vacation days do employees get per year?").text
    assert open_retriever("docs@1", workspace=home, threads=1).version == 1  # the old version stays


def test_a_query_encoder_other_than_the_index_s_is_refused(built, random_encoder, handbook, tmp_path):
    home, _ = built
    with pytest.raises(EncoderMismatch, match="was built with the encoder minilm"):
        open_retriever("docs@1", workspace=home, encoder=str(random_encoder))
    copy = tmp_path / "minilm-copy"  # the same weights under another name are the same encoder
    from trainyard.rag.encoder import minilm_path

    shutil.copytree(minilm_path(), copy)
    assert open_retriever("docs@1", workspace=home, encoder=str(copy)).version == 1


def test_evaluate_reports_metrics_with_intervals_for_each_mode(retriever, tmp_path):
    from trainyard.rag.evaluate import evaluate_index

    ids = {c.heading: c.id for c in retriever.index.chunks}
    queries = tmp_path / "q.jsonl"
    rows = [{"query": "How do I rotate an API key?", "relevant_paths": ["ops/keys.md"], "answer": "press Rotate"},
            {"query": "When does the canteen open?", "relevant_ids": [ids["Canteen hours"]]},
            {"query": "Can I pay with cash?", "relevant_ids": [ids["Payment"]]},
            {"query": "How long are backups kept?", "relevant_paths": ["ops/backups.pdf"]},
            {"query": "What is the boiling point of mercury in kelvin?", "relevant_paths": []}]
    queries.write_text("\n".join(json.dumps(r) for r in rows))
    report = evaluate_index(retriever, queries, k=3, n_boot=200)
    assert set(report["retrieval"]) == {"hybrid", "bm25", "dense"} and report["answerable"] == 4
    for mode, metrics in report["retrieval"].items():
        assert set(metrics) == {"recall@3", "mrr@10", "ndcg@10"}
        for v in metrics.values():
            assert 0 <= v["ci_low"] <= v["value"] <= v["ci_high"] <= 1
    assert report["retrieval"]["hybrid"]["recall@3"]["value"] == 1.0
    answers = report["answers"]
    assert answers["no_answer_accuracy"]["value"] == 1.0 and answers["answered_share"]["value"] == 1.0
    assert answers["supported_share"]["value"] == 1.0 and 0 < answers["f1"]["value"] < 1


def test_cli_index_ask_search_evaluate_and_bad_inputs(built, handbook, cli_inproc, workspace, tmp_path):
    r = cli_inproc("index", "hb", handbook, "--threads", "1")
    assert r.code == 0, r.output
    assert "Registered hb@1" in r.output and "broken.txt" in r.output and "empty.md" in r.output
    r = cli_inproc("ask", "hb", "How do I revoke a leaked key?", "--json")
    out = json.loads(r.stdout)
    assert out["answered"] and out["citations"][0]["path"] == "ops/keys.md"
    r = cli_inproc("search", "hb", "canteen opening hours", "--json", "-k", "2", "--mode", "bm25")
    assert json.loads(r.stdout)["results"][0]["path"] == "canteen.html"
    (tmp_path / "q.jsonl").write_text(json.dumps({"query": "canteen hours", "relevant_paths": ["canteen.html"]}) + "\n")
    r = cli_inproc("evaluate", "hb", "--queries", tmp_path / "q.jsonl", "--n-boot", "50", "--json")
    assert r.code == 0, r.output
    assert json.loads(r.stdout)["retrieval"]["hybrid"]["recall@10"]["value"] == 1.0
    card = (workspace / "reports" / "hb" / "v1" / "model_card.md").read_text()
    assert "Document index hb@1" in card and "| hybrid |" in card and "`broken.txt`" in card
    bad = [("ask", "hb", "q", "--k", "0"), ("search", "hb", "q", "--mode", "fuzzy"), ("ask", "nope", "q"),
           ("index", "x", tmp_path / "missing"), ("index", "hb", handbook, "--chunk", "3"),
           ("index", "hb", handbook, "--update", "--encoder", str(tmp_path)), ("evaluate", "hb"),
           ("evaluate", "hb", "--queries", tmp_path / "none.jsonl")]
    for args in bad:
        r = cli_inproc(*args)
        assert r.code == 2 and "error:" in r.output and "Traceback" not in r.output, (args, r.output)
    (tmp_path / "empty").mkdir()
    r = cli_inproc("index", "e", tmp_path / "empty")
    assert r.code == 2 and "No readable text" in r.output


def test_a_failed_index_build_is_redone_by_resume(handbook, cli_inproc, workspace, tmp_path):
    docs = tmp_path / "later"
    docs.mkdir()
    r = cli_inproc("index", "hb", docs, "--no-headings")
    assert r.code == 2 and "No readable text" in r.output
    from trainyard.registry.workspace import Workspace

    store = Workspace.resolve(workspace).store
    run = store.list_runs(name="hb")[0]
    assert run["status"] == "failed" and run["kind"] == "rag-index"
    shutil.copytree(handbook, docs, dirs_exist_ok=True)  # the documents arrive
    r = cli_inproc("resume", run["id"], "--json")
    assert r.code == 0, r.output
    out = json.loads(r.stdout)
    assert out["run_id"] == run["id"] and out["version"] == 1 and store.get_run(run["id"])["status"] == "finished"
    assert open_retriever("hb@1", workspace=workspace).index.meta["settings"]["headings"] is False  # the run's own settings
