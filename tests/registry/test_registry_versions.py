"""Registry lifecycle: models NAME (lineage), promote / rollback, tags, delete with artifacts."""

from __future__ import annotations

import json

import pytest
from servehelp import train_churn

from trainyard.errors import ConfigError, NotFoundError
from trainyard.registry.workspace import Workspace


@pytest.fixture
def two_versions(workspace):
    train_churn(workspace, ("linear",))
    train_churn(workspace, ("linear",), seed=1)
    return Workspace.resolve(workspace)


def test_promote_rollback_and_resolve(two_versions, cli):
    res = cli("promote", "churn@2", "--alias", "production")
    assert res.code == 0 and "version 2 (new alias)" in res.stdout
    assert two_versions.store.resolve_model("churn@production")["version"] == 2
    res = cli("promote", "churn@1", "--alias", "production")
    assert res.code == 0 and "rolled back from version 2 to version 1" in res.stdout
    assert two_versions.store.resolve_model("churn@production")["version"] == 1
    bad = cli("promote", "churn@9", "--alias", "production")
    assert bad.code == 2 and "no version 9" in bad.output and "Traceback" not in bad.output
    assert cli("promote", "churn@1", "--alias", "7").code == 2


def test_models_name_shows_versions_aliases_metrics_and_lineage(two_versions, cli):
    two_versions.store.set_alias("churn", "staging", 2)
    res = cli("models", "churn", "--json")
    assert res.code == 0, res.output
    rows = json.loads(res.stdout)
    assert [r["version"] for r in rows] == [2, 1] and rows[0]["aliases"] == ["staging"]
    lin = rows[0]["lineage"]
    run = two_versions.store.get_run(rows[0]["run_id"])
    assert lin["data_fingerprint"] == run["data_fingerprint"] and len(lin["data_fingerprint"]) == 64
    assert lin["run_id"] == run["id"] and lin["params"] is not None and lin["code"]["trainyard"]
    assert rows[0]["metrics"]["test"]["roc_auc"] > 0
    table = cli("models", "churn")
    assert table.code == 0 and "staging" in table.stdout and "fingerprint" in table.stdout
    assert cli("models", "nope").code == 2


def test_tags(two_versions, cli):
    res = cli("tag", "churn@1", "team=growth", "reviewed", "--json")
    assert res.code == 0 and json.loads(res.stdout) == {"team": "growth", "reviewed": "true"}
    res = cli("tag", "churn@1", "--remove", "reviewed", "--json")
    assert json.loads(res.stdout) == {"team": "growth"}
    assert two_versions.store.get_model("churn", 1)["tags"] == {"team": "growth"}
    assert cli("tag", "churn@1", "--remove", "nothere").code == 2


def test_delete_removes_artifacts_and_respects_aliases(two_versions, cli):
    store = two_versions.store
    path = two_versions.home / store.get_model("churn", 1)["artifact_path"]
    assert path.is_dir()
    store.set_alias("churn", "production", 1)
    res = cli("delete", "churn@1")
    assert res.code == 2 and "production" in res.output and "--force" in res.output
    assert path.is_dir()
    assert cli("delete", "churn").code == 2  # must name a version
    res = cli("delete", "churn@1", "--force")
    assert res.code == 0, res.output
    assert not path.exists()
    with pytest.raises(NotFoundError):
        store.get_model("churn", 1)
    with pytest.raises(NotFoundError):
        store.resolve_model("churn@production")
    assert [r["version"] for r in store.list_models("churn")] == [2]


def test_store_alias_rules(two_versions):
    store = two_versions.store
    with pytest.raises(ConfigError):
        store.set_alias("churn", "latest", 1)
    with pytest.raises(NotFoundError):
        store.set_alias("churn", "production", 5)
    assert store.set_alias("churn", "production", 1) is None
    assert store.set_alias("churn", "production", 2) == 1
    assert store.alias_version("churn", "production") == 2 and store.latest_version("churn") == 2
    store.remove_alias("churn", "production")
    assert store.alias_version("churn", "production") is None
