"""Loading, schema inference, task inference and splitting."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trainyard.data.load import fingerprint, load_table
from trainyard.data.schema import check_target, infer_schema
from trainyard.data.split import split
from trainyard.errors import ConfigError, DataError, NotFoundError
from trainyard.tasks import Task, infer_task


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".parquet", ".jsonl", ".csv.gz"])
def test_load_each_format_round_trips(tmp_path, mixed_table, suffix):
    path = tmp_path / f"t{suffix}"
    if suffix == ".parquet":
        mixed_table.to_parquet(path)
    elif suffix == ".jsonl":
        mixed_table.to_json(path, orient="records", lines=True)
    else:
        mixed_table.to_csv(path, index=False, sep="\t" if suffix == ".tsv" else ",")
    df = load_table(path)
    assert list(df.columns) == list(mixed_table.columns)
    assert len(df) == len(mixed_table)
    assert df["charges"].isna().sum() == mixed_table["charges"].isna().sum()


def test_semicolon_csv_is_sniffed(tmp_path):
    path = tmp_path / "eu.csv"
    path.write_text("a;b;y\n1,5;x;0\n2,5;y;1\n")
    assert list(load_table(path).columns) == ["a", "b", "y"]


def test_dataframe_passes_through(mixed_table):
    assert load_table(mixed_table) is mixed_table


def test_stripping_column_names_leaves_the_callers_frame_alone():
    import pandas as pd

    df = pd.DataFrame({" a ": [1, 2], "y": [0, 1]})
    out = load_table(df)
    assert list(out.columns) == ["a", "y"]
    assert list(df.columns) == [" a ", "y"]


@pytest.mark.parametrize(
    "setup, error, words",
    [
        (lambda p: p / "missing.csv", NotFoundError, "File not found"),
        (lambda p: p, DataError, "is a directory"),
        (lambda p: _write(p / "empty.csv", ""), DataError, "is empty"),
        (lambda p: _write(p / "header.csv", "a,b,c\n"), DataError, "no rows"),
        (lambda p: _write(p / "bin.csv", b"\x00\x01\x02\xff\xfe" * 50), DataError, "binary"),
        (lambda p: _write(p / "data.xlsx", "whatever"), DataError, "Cannot tell the format"),
        (lambda p: _write(p / "bad.parquet", "not parquet at all"), DataError, "Cannot read"),
        (lambda p: _write(p / "bad.jsonl", '{"a": 1}\n{"a": \n'), DataError, "Line 2 of 'bad.jsonl'"),
        (lambda p: _write(p / "dupes.csv", "a,a,y\n1,2,3\n"), DataError, "more than once"),
    ],
)
def test_broken_files_give_clear_errors(tmp_path, setup, error, words):
    with pytest.raises(error) as info:
        load_table(setup(tmp_path))
    assert words in info.value.problem
    assert info.value.fix  # every error says how to fix it


def _write(path, content):
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


def test_unknown_target_suggests_close_name(mixed_table):
    with pytest.raises(DataError) as info:
        check_target(mixed_table, "chrun")
    assert "'churn'" in info.value.fix


@pytest.mark.parametrize(
    "values, words",
    [([np.nan] * 30, "empty"), (["yes"] * 30, "single value")],
)
def test_degenerate_targets_are_refused(mixed_table, values, words):
    df = mixed_table.head(30).assign(churn=values)
    with pytest.raises(DataError, match=words):
        check_target(df, "churn")


def test_schema_roles_are_inferred():
    rng = np.random.default_rng(0)
    n = 300
    df = pd.DataFrame({
        "row_id": np.arange(n),
        "uuid": [f"{rng.integers(1 << 62):016x}-{i}" for i in range(n)],
        "age": rng.integers(18, 90, n),
        "income": rng.normal(5e4, 1e4, n),
        "city": rng.choice(["a", "b", "c"], n),
        "active": rng.choice(["yes", "no"], n),
        "flag": rng.choice([True, False], n),
        "signup": pd.date_range("2020-01-01", periods=n, freq="D").astype(str),
        "review": [" ".join(rng.choice(["good", "bad", "fine", "slow", "fast", "ok"], 8)) + f" {i}" for i in range(n)],
        "constant": 1,
        "numbers_as_text": rng.integers(0, 100, n).astype(str),
        "y": rng.integers(0, 2, n),
    })
    roles = {c.name: c.role for c in infer_schema(df, "y").columns}
    assert roles == {
        "row_id": "id", "uuid": "id", "age": "numeric", "income": "numeric", "city": "categorical",
        "active": "boolean", "flag": "boolean", "signup": "datetime", "review": "text", "constant": "ignore",
        "numbers_as_text": "numeric", "y": "target",
    }


def test_schema_overrides_win_and_are_validated(mixed_table):
    schema = infer_schema(mixed_table, "churn", {"support_calls": "categorical", "region": "ignore"})
    assert schema.role("support_calls") == "categorical"
    assert "region" not in schema.features()
    with pytest.raises(ConfigError, match="not in the data"):
        infer_schema(mixed_table, "churn", {"nope": "ignore"})
    with pytest.raises(ConfigError, match="not a column role"):
        infer_schema(mixed_table, "churn", {"plan": "bogus"})


@pytest.mark.parametrize(
    "values, task",
    [
        (["yes", "no"] * 50, Task.BINARY),
        ([0, 1] * 50, Task.BINARY),
        (["a", "b", "c", "d"] * 25, Task.MULTICLASS),
        ([1, 2, 3] * 100, Task.MULTICLASS),
        (list(np.linspace(0, 1, 100)), Task.REGRESSION),
        (list(range(100)), Task.REGRESSION),
    ],
)
def test_infer_task(values, task):
    assert infer_task(pd.Series(values, name="y")) is task


def test_split_is_stratified_disjoint_and_reproducible(mixed_table):
    a = split(mixed_table, "churn", Task.BINARY, seed=3)
    b = split(mixed_table, "churn", Task.BINARY, seed=3)
    assert a.train.index.equals(b.train.index) and a.test.index.equals(b.test.index)
    idx = [set(p.index) for p in (a.train, a.val, a.test)]
    assert not (idx[0] & idx[1] or idx[0] & idx[2] or idx[1] & idx[2])
    assert sum(map(len, idx)) == len(mixed_table)
    rate = (mixed_table["churn"] == "yes").mean()
    for part in (a.train, a.val, a.test):
        assert abs((part["churn"] == "yes").mean() - rate) < 0.03
    assert "stratified" in a.strategy


def test_group_and_time_splits(mixed_table):
    df = mixed_table.assign(customer=np.arange(len(mixed_table)) // 4, day=np.arange(len(mixed_table)))
    g = split(df, "churn", Task.BINARY, group_col="customer")
    assert not set(g.train["customer"]) & set(g.test["customer"])
    t = split(df, "churn", Task.BINARY, time_col="day")
    assert t.train["day"].max() < t.val["day"].min() <= t.val["day"].max() < t.test["day"].min()


def test_fingerprint_changes_with_content(mixed_table):
    other = mixed_table.copy()
    other.loc[0, "tenure"] += 1
    assert fingerprint(mixed_table) == fingerprint(mixed_table.copy())
    assert fingerprint(mixed_table) != fingerprint(other)


def test_ranges_that_look_like_dates_are_not_dates_and_do_not_crash():
    """NASS's speed bands ('1-9', '10-24', ...) parse as year-1 dates at second resolution: out of range, not dates."""
    import pandas as pd

    from trainyard.data.schema import as_datetime, infer_schema

    bands = pd.Series(["1-9km/h", "10-24", "25-39", "40-54", "55+"] * 40)
    as_datetime(bands)  # raised OutOfBoundsDatetime ('1-10-24 00:00:00') before
    df = pd.DataFrame({"band": bands, "y": [0, 1] * 100})
    assert infer_schema(df, "y").role("band") == "categorical"
