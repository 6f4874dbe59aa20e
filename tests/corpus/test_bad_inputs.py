"""The corpus of bad inputs (issue 16): each one, through the real CLI, exits 2 with no traceback, names the
problem, and leaves the workspace as it was. Grow it with each new bad input."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from conftest import make_mixed_table


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A workspace holding one small table model, churn@1 (trained once for the module)."""
    from trainyard import api

    ws = tmp_path_factory.mktemp("corpus") / "ws"
    api.train(make_mixed_table(400), target="churn", workspace=ws, include=["linear"], max_trials=1, name="churn")
    return ws


@pytest.fixture
def rows(tmp_path):
    """Writes a file of rows to score from text (exact bytes matter here) and returns its path."""

    def write(name: str, text: str | bytes) -> str:
        path = tmp_path / name
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return str(path)

    return write


HEADER = "tenure,charges,plan,region,support_calls\n"
GOOD = "12,70.5,monthly,north,2\n40,55.0,yearly,south,1\n"


def refused(cli, home, *args, names: tuple[str, ...]) -> str:
    """Run the CLI on the module's workspace; assert a clean refusal naming every string in `names`."""
    before = workspace_state(home)
    result = cli(*args, env={"TRAINYARD_HOME": str(home)})
    out = " ".join(result.output.split())  # the console wraps long lines
    assert result.code == 2, result.output
    assert "Traceback" not in result.output and "internal error" not in result.output, result.output
    for name in names:
        assert name in out, (name, result.output)
    assert workspace_state(home) == before
    return out


def workspace_state(home) -> tuple:
    """The registered versions, the runs and the artifact folders: what a refused command must not change."""
    from trainyard.registry.workspace import Workspace

    store = Workspace.resolve(home).store
    versions = sorted((v["name"], v["version"]) for v in store.list_models())
    runs = sorted((r["id"], r["status"]) for r in store.list_runs())
    artifacts = sorted(p.name for p in (home / "artifacts").iterdir()) if (home / "artifacts").exists() else []
    return versions, runs, artifacts


@pytest.mark.parametrize("output", [None, "out.csv"])
def test_predict_text_in_numeric_column(cli, home, rows, output, tmp_path):
    data = rows("text.csv", HEADER + GOOD + "7,abc,monthly,north,1\n")
    extra = ("-o", str(tmp_path / output)) if output else ()
    refused(cli, home, "predict", "churn", data, *extra, names=("'charges'", "row 3", "'abc'"))
    assert not list(tmp_path.glob("*out.csv*"))  # no output, not even a partial one


def test_predict_infinite_value(cli, home, rows, tmp_path):
    data = rows("inf.csv", HEADER + GOOD + "7,inf,monthly,north,1\n")
    refused(cli, home, "predict", "churn", data, "-o", str(tmp_path / "out.csv"), names=("'charges'", "infinite", "row 3"))


def test_predict_header_only(cli, home, rows, tmp_path):
    data = rows("header.csv", HEADER)
    refused(cli, home, "predict", "churn", data, "-o", str(tmp_path / "out.csv"), names=("no", "rows"))


@pytest.mark.parametrize("command", ["predict", "train"])
def test_utf16_file_names_its_encoding(cli, home, rows, command, tmp_path):
    data = rows("wide.csv", (HEADER + GOOD).encode("utf-16"))
    args = ("predict", "churn", data, "-o", str(tmp_path / "o.csv")) if command == "predict" else ("train", data, "--target", "plan")
    refused(cli, home, *args, names=("UTF-16", "UTF-8"))


@pytest.mark.parametrize("output", [None, "out.csv"])
def test_predict_jsonl_bad_line(cli, home, rows, output, tmp_path):
    good = json.dumps({"tenure": 3, "charges": 50.0, "plan": "monthly", "region": "north", "support_calls": 1})
    data = rows("bad.jsonl", f"{good}\n{good}\n{{\"tenure\": 4, \n{good}\n")
    extra = ("-o", str(tmp_path / output)) if output else ()
    refused(cli, home, "predict", "churn", data, *extra, names=("Line 3", "bad.jsonl"))


@pytest.mark.parametrize("output", [None, "out.csv"])
def test_predict_ragged_csv(cli, home, rows, output, tmp_path):
    data = rows("ragged.csv", HEADER + GOOD + "7,50,monthly,north,1,oops\n")
    extra = ("-o", str(tmp_path / output)) if output else ()
    refused(cli, home, "predict", "churn", data, *extra, names=("Line 4", "6 fields", "5 columns"))


@pytest.mark.parametrize("command", ["predict", "train"])
def test_ragged_first_row_would_shift_columns(cli, home, rows, command, tmp_path):
    """pandas silently makes the first column the index when the first row has an extra field (every value moves
    one column right; train then said the target had a single value)."""
    data = rows("shifted.csv", HEADER + "12,70.5,monthly,north,2,extra\n" + GOOD)
    args = ("predict", "churn", data, "-o", str(tmp_path / "o.csv")) if command == "predict" else ("train", data, "--target", "plan")
    refused(cli, home, *args, names=("Line 2", "6 fields", "shift"))


def test_predict_keeps_input_columns_and_flags_unseen_values(cli, home, rows, tmp_path):
    data = rows("new.csv", HEADER + GOOD + "7,9999,monthly,atlantis,3\n")
    for out in ("o.csv", "o.parquet", "o.jsonl"):
        result = cli("predict", "churn", data, "-o", str(tmp_path / out), env={"TRAINYARD_HOME": str(home)})
        assert result.code == 0, result.output
        text = " ".join(result.stderr.split())
        assert "region: 1 row(s) with a category never seen in training (e.g. 'atlantis'" in text
        assert "charges: 1 row(s) with a value outside the training range (e.g. 9999" in text
    assert (tmp_path / "o.csv").read_text().splitlines()[1].startswith("12,70.5,monthly,north,2,")  # not 12.0 / 2.0
    got = pd.read_parquet(tmp_path / "o.parquet")
    assert got["support_calls"].tolist() == [2, 1, 3] and pd.api.types.is_integer_dtype(got["support_calls"])
    assert [json.loads(line)["support_calls"] for line in (tmp_path / "o.jsonl").read_text().splitlines()] == [2, 1, 3]


def train_table(tmp_path, name: str, change) -> str:
    """A churn table with one change applied, written as CSV (or Parquet for a .parquet name)."""
    df = make_mixed_table(300, seed=1)
    change(df)
    path = tmp_path / name
    df.to_parquet(path, index=False) if name.endswith(".parquet") else df.to_csv(path, index=False)
    return str(path)


def test_train_refuses_infinite_features_before_training(cli, home, tmp_path):
    def plant(df):
        df.loc[[3, 7], "charges"] = [float("inf"), float("-inf")]

    data = train_table(tmp_path, "inf.csv", plant)
    refused(cli, home, "train", data, "--target", "churn", "--include", "linear", "--max-trials", "1",
            names=("Infinite values", "'charges' (2 row(s))"))


def test_train_max_trials_zero(cli, home, tmp_path):
    data = train_table(tmp_path, "ok.csv", lambda df: None)
    refused(cli, home, "train", data, "--target", "churn", "--max-trials", "0", names=("--max-trials 0",))


def test_train_time_col_on_categories(cli, home, tmp_path):
    data = train_table(tmp_path, "ok.csv", lambda df: None)
    refused(cli, home, "train", data, "--target", "churn", "--time-col", "plan", "--include", "linear", "--max-trials", "1",
            names=("--time-col 'plan'", "categorical"))


def test_evaluate_single_class(cli, home, tmp_path):
    data = train_table(tmp_path, "one.csv", lambda df: df.__setitem__("churn", "yes"))
    refused(cli, home, "evaluate", "churn", "--data", data, names=("single class", "'yes'"))


@pytest.mark.parametrize("n_boot", ["-1", "0"])
def test_evaluate_bad_bootstrap_count(cli, home, tmp_path, n_boot):
    data = train_table(tmp_path, "ok.csv", lambda df: None)
    refused(cli, home, "evaluate", "churn", "--data", data, "--n-boot", n_boot, names=(f"--n-boot {n_boot}",))


@pytest.mark.slow
def test_nested_parquet_lists_train_and_audit(cli, tmp_path):
    """Parquet list columns arrive as numpy arrays, which schema inference could not hash."""
    def nest(df):
        df["tags"] = [[1, 2] if i % 2 else [3] for i in range(len(df))]

    data = train_table(tmp_path, "nested.parquet", nest)
    audited = cli("audit", data, "--target", "churn")
    assert audited.code == 0 and "Traceback" not in audited.output, audited.output
    trained = cli("train", data, "--target", "churn", "--include", "linear", "--max-trials", "1", "--name", "nested")
    assert trained.code == 0 and "Registered nested@1" in " ".join(trained.output.split()), trained.output


@pytest.mark.slow
def test_calibrated_model_with_learning_curve(cli, tmp_path):
    data = train_table(tmp_path, "ok.csv", lambda df: None)
    result = cli("train", data, "--target", "churn", "--include", "linear", "--max-trials", "1", "--name", "cal",
                 "--calibrate", "sigmoid", "--learning-curve", "--json")
    assert result.code == 0, result.output
    assert json.loads(result.stdout)["version"] == 1


@pytest.mark.parametrize("args, names", [
    (("serve", "churn", "--port", "70000"), ("--port 70000", "1 to 65535")),
    (("serve", "churn", "--max-body-mb", "-1"), ("--max-body-mb -1", "refuse every request")),
    (("serve", "churn", "--max-batch", "0"), ("--max-batch 0",)),
])
def test_serve_refuses_limits_it_cannot_honour(cli, home, args, names):
    refused(cli, home, *args, names=names)


def test_global_options_after_the_command(cli, home, tmp_path):
    """The README says every command takes --workspace and --debug: after the command name too."""
    elsewhere = {"TRAINYARD_HOME": str(tmp_path / "not-this-one")}
    listed = cli("models", "--workspace", str(home), "--json", env=elsewhere)
    assert listed.code == 0, listed.output
    assert [m["name"] for m in json.loads(listed.stdout)] == ["churn"]
    runs = cli("runs", "--json", "-w", str(home), "--debug", env=elsewhere)
    assert runs.code == 0 and len(json.loads(runs.stdout)) == 1, runs.output
    both = cli("--debug", "models", f"--workspace={home}", "--json", env=elsewhere)
    assert both.code == 0 and json.loads(both.stdout), both.output
    assert not (tmp_path / "not-this-one").exists()


def test_read_only_commands_create_no_workspace(cli, tmp_path):
    absent = tmp_path / "never-made"
    for args in (("models",), ("runs",), ("models", "--json"), ("runs", "--json")):
        result = cli(*args, env={"TRAINYARD_HOME": str(absent)})
        assert result.code == 0, result.output
    assert cli("models", "churn", env={"TRAINYARD_HOME": str(absent)}).code == 2
    assert not absent.exists()


def test_fetch_script_cites_only_files_in_the_repository():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    text = (root / "scripts" / "fetch_data.py").read_text()
    import re

    for cited in re.findall(r"[\w./-]+\.md", text):
        assert (root / cited).exists(), cited


@pytest.mark.slow
def test_model_no_better_than_baseline_is_flagged_and_not_the_default(cli, workspace, tmp_path):
    """Issue 16 item 20: registered with a loud warning, tagged, and `predict NAME` keeps the better version."""
    import numpy as np

    from trainyard.registry.workspace import Workspace

    good = tmp_path / "good.csv"
    make_mixed_table(400).to_csv(good, index=False)
    first = cli("train", str(good), "--target", "churn", "--include", "linear", "--max-trials", "1", "--name", "churn",
                "--metric", "accuracy")
    assert first.code == 0 and "WARNING" not in first.output, first.output
    rng = np.random.default_rng(0)
    noise = pd.DataFrame({"a": rng.normal(size=400), "b": rng.normal(size=400),
                          "churn": np.where(rng.random(400) < 0.93, "no", "yes")})
    bad = tmp_path / "noise.csv"
    noise.to_csv(bad, index=False)
    second = cli("train", str(bad), "--target", "churn", "--include", "linear", "--max-trials", "1", "--name", "churn",
                 "--metric", "accuracy", "--class-weight", "none")
    text = " ".join(second.output.split())
    assert second.code == 0 and "WARNING: This model is no better than the naive baseline" in text, second.output
    store = Workspace.resolve(workspace).store
    assert store.resolve_model("churn")["version"] == 1
    assert store.resolve_model("churn@latest")["version"] == 2 and store.get_model("churn", 2)["tags"] == {"baseline": "not-beaten"}


@pytest.mark.parametrize("command", ["models", "train", "serve"])
def test_help_shows_flags_as_flags(cli, command):
    """Issue 16 item 21: `--json <bool>` read as if --json took a value."""
    result = cli(command, "--help")
    assert result.code == 0 and "--json" in result.stdout or "--no-log" in result.stdout, result.output
    assert "<bool>" not in result.stdout


@pytest.fixture(scope="module")
def tickets(home, tmp_path_factory):
    """A labelling project 'tickets' (issue 19) in the module's workspace: 6 texts with ids, one labelled 'bug'."""
    from trainyard.label import ledger
    from trainyard.label.project import create_project
    from trainyard.registry.workspace import Workspace

    folder = tmp_path_factory.mktemp("tickets")
    data = folder / "tickets.csv"
    data.write_text("id,body\n" + "".join(f"t{i},ticket number {i}\n" for i in range(6)))
    ws = Workspace.resolve(home)
    project = create_project(ws, "tickets", data, text_col="body", classes=["billing", "bug"])
    item = ledger.claim(ws.store, project, "alice")
    ledger.record(ws.store, project, item["id"], "bug", annotator="alice", queue="random", item_sha256=item["content_sha256"])
    return folder


LABEL_CASES = {
    "unknown class in the data": (("label", "create", "x", "--data", "{dir}/wine.csv", "--target", "kind", "--classes", "red,white"),
                                  "kind,alcohol\nred,1\nrose,2\n", ("'rose'", "--classes")),
    "one class": (("label", "create", "x", "--data", "{dir}/t.csv", "--text-col", "body", "--classes", "a"), "body\nhi\n", ("at least two",)),
    "bad project name": (("label", "create", "../up", "--data", "{dir}/t.csv", "--text-col", "body", "--classes", "a,b"), "body\nhi\n",
                         ("not a valid project name",)),
    "text column missing": (("label", "create", "x", "--data", "{dir}/t.csv", "--text-col", "text", "--classes", "a,b"), "body\nhi\n",
                            ("--text-col 'text'",)),
    "project exists": (("label", "create", "tickets", "--data", "{dir}/t.csv", "--text-col", "body", "--classes", "a,b"), "body\nhi\n",
                       ("exists already",)),
    "bad queue": (("label", "create", "x", "--data", "{dir}/t.csv", "--text-col", "body", "--classes", "a,b", "--queue", "fifo"),
                  "body\nhi\n", ("--queue 'fifo'", "random")),
    "unknown project": (("label", "status", "nosuch"), None, ("No labelling project named 'nosuch'", "label create")),
    "import unknown class": (("label", "import", "tickets", "{dir}/in.csv"), "id,label\nt1,spam\n", ("'spam' is not a class",)),
    "import vanished item": (("label", "import", "tickets", "{dir}/in.csv"), "id,label\nt99,bug\n", ("matches no item", "vanished")),
    "import malformed JSON": (("label", "import", "tickets", "{dir}/in.json"), '[{"data": {', ("is not valid JSON",)),
    "import not tasks": (("label", "import", "tickets", "{dir}/in.json"), '"text"', ("list of tasks",)),
    "import without labels": (("label", "import", "tickets", "{dir}/in.csv"), "id,what\nt1,bug\n", ("has no label", "--label-col")),
    "export format": (("label", "export", "tickets", "-o", "{dir}/out.txt"), None, ("export format", "--format")),
    "train too few labels": (("train", "label:tickets"), None, ("too few labels",)),
}


@pytest.mark.parametrize("case", list(LABEL_CASES))
def test_labelling_bad_inputs(cli, home, tickets, tmp_path, case):
    args, content, names = LABEL_CASES[case]
    args = tuple(a.replace("{dir}", str(tmp_path)) for a in args)
    if content is not None:
        target = next(a for a in args if a.startswith(str(tmp_path)) and not a.endswith("out.txt"))
        with open(target, "w") as fh:
            fh.write(content)
    before = _label_state(home)
    refused(cli, home, *args, names=names)
    assert _label_state(home) == before


def _label_state(home) -> tuple:
    from trainyard.label import ledger
    from trainyard.label.project import get_project, list_projects
    from trainyard.registry.workspace import Workspace

    store = Workspace.resolve(home).store
    return tuple(list_projects(store)), tuple((a["key"], a["label"]) for a in ledger.annotations(store, get_project(store, "tickets")))


@pytest.mark.parametrize("args, names", [
    (["--env", "CartPole-v1", "--hparam", "use_sde=true"], ("use_sde", "continuous actions")),  # gSDE on discrete actions
    (["--env", "CartPole-v1", "--seeds", "0"], ("--seeds must be at least 1", "--seeds 3")),
])
def test_rl_settings_refused(cli, home, args, names):
    pytest.importorskip("gymnasium")
    refused(cli, home, "train", "--task", "rl", *args, "--timesteps", "100", names=names)


@pytest.mark.parametrize("args, names", [
    (("--cluster", "nonsense"), ("'nonsense'", "not a cluster address", "local:N")),
    (("--cluster", "local:0"), ("'local:0'", "at least 1", "local:2")),
    (("--cluster", "ray://head"), ("'ray://head'", "ray://HOST:PORT")),
    (("--cluster", "127.0.0.1:70000"), ("'127.0.0.1:70000'", "HOST:PORT")),
    (("--cluster", "127.0.0.1:1"), ("No Ray cluster answers at 127.0.0.1:1", "ray start --head")),
    (("--cluster", "local:2", "--workers", "0"), ("--workers must be at least 1",)),
    (("--workers", "2"), ("--workers needs --cluster", "--cluster local:2")),
])
def test_train_bad_cluster(cli, home, tmp_path, args, names):
    """Issue 22: a bad --cluster / --workers value, or a cluster nobody answers at, is refused before any run exists."""
    data = tmp_path / "churn.csv"
    make_mixed_table(200).to_csv(data, index=False)
    refused(cli, home, "train", str(data), "--target", "churn", *args, names=names)


def test_cluster_on_a_kind_that_cannot_use_it(cli, home, tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("some words to learn from\n" * 50)
    refused(cli, home, "train", str(corpus), "--task", "preference", "--method", "rloo", "--base", "lm@1", "--reward-model", "rm@1",
            "--cluster", "local:2", names=("built for --task causal-lm, sft, reward and preference --method dpo, not --method rloo",
                                           "run --method rloo without --cluster"))
    refused(cli, home, "train", str(corpus), "--task", "sft", "--base", "lm@1", "--lora", "--quantize", "4bit", "--cluster", "local:2",
            names=("--quantize 4bit does not run data-parallel", "drop --quantize"))
    refused(cli, home, "train", "--task", "rl", "--env", "CartPole-v1", "--cluster", "local:2", names=("--cluster does not apply",))


def test_resume_workers_on_a_run_that_is_not_data_parallel(cli, home):
    from trainyard.registry.workspace import Workspace

    run_id = Workspace.resolve(home).store.list_runs()[0]["id"]
    refused(cli, home, "resume", run_id, "--workers", "2", names=("--workers applies to resuming a data-parallel run (--cluster)",))
