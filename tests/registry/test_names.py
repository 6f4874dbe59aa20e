"""Every name a user gives (model, alias, tag) matches one pattern, at every entry point, and nothing escapes the workspace."""

from __future__ import annotations

import pytest

from trainyard.errors import ConfigError
from trainyard.registry.names import check_alias, check_name, safe_stem

BAD = ["../../evil", "/tmp/evil", "a/b", "..", "x..y", "", " churn", "churn<script>", "a" * 65, "-x", ".hidden", "c@1", "na\nme"]


@pytest.mark.parametrize("name", BAD)
def test_bad_names_are_refused_with_the_rule(name):
    with pytest.raises(ConfigError) as err:
        check_name(name)
    assert "letters, digits" in err.value.problem


@pytest.mark.parametrize("name", ["churn", "churn-v2", "churn_2026", "a", "A.b-c_d", "7up"])
def test_good_names_pass(name):
    assert check_name(name) == name


def test_aliases_are_not_versions():
    for alias in ("3", "latest", "../x y<script>"):
        with pytest.raises(ConfigError):
            check_alias(alias)
    assert check_alias("production") == "production"


def test_file_names_become_valid_default_names():
    assert safe_stem("my data (2026)", "model") == "my-data-2026"
    assert safe_stem("..", "model") == "model"
    assert safe_stem(".hidden", "model") == "hidden"


def test_cli_train_with_a_path_as_name_writes_nothing_outside(cli, mixed_csv, tmp_path, workspace):
    outside = tmp_path / "evil"
    result = cli("train", mixed_csv, "--target", "churn", "--name", "../../evil", "--time-limit", "5")
    assert result.code == 2, result.output
    assert "not a valid model name" in result.output and "Traceback" not in result.output
    assert not outside.exists() and not (workspace.parent / "evil").exists()
    assert not (workspace / "artifacts").exists() or not any((workspace / "artifacts").iterdir())


def test_python_api_refuses_a_bad_name_before_any_work(mixed_table, workspace):
    import trainyard

    with pytest.raises(ConfigError):
        trainyard.train(mixed_table, target="churn", name="/tmp/abs-evil", max_trials=1)


def test_promote_refuses_a_bad_alias(workspace, mixed_table, cli):
    import trainyard

    trainyard.train(mixed_table, target="churn", name="churn", max_trials=1, include=["linear"])
    result = cli("promote", "churn@1", "--alias", "../x y<script>")
    assert result.code == 2 and "not a valid alias" in result.output
    result = cli("tag", "churn@1", "bad key=v")
    assert result.code == 2, result.output
