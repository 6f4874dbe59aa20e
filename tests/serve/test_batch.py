"""Streaming batch prediction: chunked reads and appends give the same numbers as scoring the whole table."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import make_mixed_table
from servehelp import train_churn

from trainyard.errors import DataError


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    from trainyard import api

    home = tmp_path_factory.mktemp("batch") / "ws"
    train_churn(home, ("lightgbm",))
    return api.load("churn", home)


@pytest.mark.parametrize("src_ext, out_ext", [(".csv", ".parquet"), (".parquet", ".csv"), (".jsonl", ".jsonl"), (".csv", ".tsv")])
def test_chunked_equals_whole(model, tmp_path, src_ext, out_ext):
    from trainyard.api import prediction_frame
    from trainyard.serve.batch import predict_file

    df = make_mixed_table(2500, seed=3).drop(columns="churn")
    df.loc[:999, "charges"] = df.loc[:999, "charges"].round()  # the first chunk looks like integers
    df.loc[:999, "region"] = np.nan  # ... and has only missing values in one column
    src = tmp_path / f"in{src_ext}"
    {".csv": lambda p: df.to_csv(p, index=False), ".parquet": lambda p: df.to_parquet(p, index=False),
     ".jsonl": lambda p: df.to_json(p, orient="records", lines=True)}[src_ext](src)
    out = tmp_path / f"out{out_ext}"
    seen = []
    n = predict_file(model, src, out, chunk_rows=1000, on_progress=lambda *a: seen.append(a))
    assert n == 2500 and [s[0] for s in seen] == [1000, 2000, 2500]
    read = {".parquet": pd.read_parquet, ".csv": pd.read_csv, ".tsv": lambda p: pd.read_csv(p, sep="\t"),
            ".jsonl": lambda p: pd.read_json(p, lines=True)}[out_ext]
    got = read(out)
    expected = prediction_frame(model, df)
    assert len(got) == 2500 and list(got.columns[: df.shape[1]]) == list(df.columns)
    np.testing.assert_allclose(got["proba_yes"].to_numpy(), expected["proba_yes"].to_numpy(), atol=1e-9)
    assert (got["churn_predicted"].to_numpy() == expected["churn_predicted"].to_numpy()).all()
    assert not list(tmp_path.glob(".*partial"))


def test_missing_required_column_is_a_clear_error_and_leaves_no_output(model, tmp_path):
    from trainyard.serve.batch import predict_file

    df = make_mixed_table(50).drop(columns=["churn", "tenure"])
    df.to_csv(tmp_path / "in.csv", index=False)
    with pytest.raises(DataError, match="tenure"):
        predict_file(model, tmp_path / "in.csv", tmp_path / "out.parquet", chunk_rows=10)
    assert not (tmp_path / "out.parquet").exists() and not list(tmp_path.glob(".*partial"))


def test_cli_predict_streams_with_progress(cli, workspace, tmp_path):
    train_churn(workspace, ("linear",))
    make_mixed_table(3000, seed=4).drop(columns="churn").to_csv(tmp_path / "big.csv", index=False)
    r = cli("predict", "churn", "big.csv", "-o", "scored.parquet", "--chunk-rows", "700", "--only-predictions")
    assert r.code == 0, r.output
    assert "Wrote 3,000 predictions" in r.stdout
    scored = pd.read_parquet(tmp_path / "scored.parquet")
    assert list(scored.columns) == ["churn_predicted", "proba_no", "proba_yes"] and len(scored) == 3000
