"""The README's `TRAINYARD_DB=postgresql://...` works as written (issue 16 item 16): SQLAlchemy 2.1 reads a
bare postgresql:// as psycopg 3, which the postgres extra does not install."""

from __future__ import annotations

import json

import pytest
from conftest import make_mixed_table

from trainyard.errors import ConfigError
from trainyard.registry.dburl import with_driver


def test_bare_url_gets_an_installed_driver():
    got = with_driver("postgresql://me@db.example/trainyard")
    assert got.split("://")[0] in ("postgresql+psycopg", "postgresql+psycopg2")
    assert with_driver("postgres://me@db/x").split("://")[1] == "me@db/x"
    assert with_driver("postgresql+psycopg2://me@db/x") == "postgresql+psycopg2://me@db/x"
    assert with_driver("sqlite:///tmp/x.db") == "sqlite:///tmp/x.db"


def test_no_driver_is_a_clean_error(monkeypatch):
    import trainyard.registry.dburl as dburl

    monkeypatch.setattr(dburl, "DRIVERS", (("no_such_driver_module", "x"),))
    with pytest.raises(ConfigError, match="no PostgreSQL driver"):
        dburl.with_driver("postgresql://me@db/x")


def test_readme_form_against_a_real_server(cli, postgres_url, tmp_path):
    readme_form = "postgresql://" + postgres_url.split("://", 1)[1]  # the fixture names its driver; the README does not
    data = tmp_path / "churn.csv"
    make_mixed_table(200).to_csv(data, index=False)
    env = {"TRAINYARD_DB": readme_form}
    trained = cli("train", str(data), "--target", "churn", "--include", "linear", "--max-trials", "1", "--name", "pgreadme", env=env)
    assert trained.code == 0, trained.output
    listed = cli("models", "--json", env=env)
    assert listed.code == 0, listed.output
    assert "pgreadme" in [m["name"] for m in json.loads(listed.stdout)]
