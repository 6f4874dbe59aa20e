"""Model families: every built-in one registers, fits, predicts, respects a time budget and a search space."""

from __future__ import annotations

import time

import numpy as np
import optuna
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine

from trainyard.data.prepare import make_preprocessor
from trainyard.data.schema import infer_schema
from trainyard.models.boosting import Boosted
from trainyard.models.families import all_families, choose_families
from trainyard.models.trees import CodedTrees
from trainyard.tasks import Task
from trainyard.models.ensemble import predictions

BUILTIN = ["linear", "elastic_net", "knn", "decision_tree", "random_forest", "extra_trees", "lightgbm", "xgboost", "catboost"]


def _table(loader, n=None):
    data = loader(as_frame=True)
    df = data.frame.copy()
    df = df.rename(columns={"target": "y"})
    return df.sample(frac=1.0, random_state=0) if n is None else df.sample(n, random_state=0)


@pytest.fixture(scope="module")
def datasets():
    cancer = _table(load_breast_cancer)
    cancer["band"] = pd.cut(cancer["mean radius"], 4, labels=["a", "b", "c", "d"]).astype(str)  # a categorical column
    return {Task.BINARY: cancer, Task.MULTICLASS: _table(load_wine), Task.REGRESSION: _table(load_diabetes)}


def test_every_builtin_family_is_registered_with_a_space_and_an_estimate():
    families = all_families()
    for name in BUILTIN:
        assert name in families, name
        fam = families[name]
        assert fam.space is not None and fam.estimate is not None and fam.available()
        est = fam.footprint(10_000, 20, 2)
        assert est.seconds > 0 and est.memory_mb > 0


def test_memory_estimates_grow_with_the_data():
    for fam in all_families().values():
        small, large = fam.footprint(1_000, 10, 2), fam.footprint(1_000_000, 10, 2)
        assert large.memory_mb > small.memory_mb, fam.name


@pytest.mark.parametrize("name", BUILTIN)
@pytest.mark.parametrize("task", [Task.BINARY, Task.MULTICLASS, Task.REGRESSION])
def test_family_fits_and_beats_a_naive_guess(name, task, datasets):
    df = datasets[task]
    fam = all_families()[name]
    schema = infer_schema(df, "y")
    train, test = df.iloc[: int(0.7 * len(df))], df.iloc[int(0.7 * len(df)):]
    y_train, y_test = train["y"].to_numpy(), test["y"].to_numpy()
    prep = make_preprocessor(schema, fam.prep).fit(train)
    model = fam.make(task, 0, **fam.defaults).fit(prep.transform(train), y_train)
    n_classes = len(np.unique(df["y"])) if task.is_classification else None
    pred = predictions(model, prep.transform(test), task, n_classes)
    if task is Task.REGRESSION:
        assert np.sqrt(np.mean((pred - y_test) ** 2)) < np.std(y_test)
    else:
        assert pred.shape == (len(test), n_classes)
        np.testing.assert_allclose(pred.sum(axis=1), 1.0, atol=1e-6)
        majority = np.mean(y_test == pd.Series(y_train).mode()[0])
        assert np.mean(pred.argmax(axis=1) == y_test) > majority


@pytest.mark.parametrize("name", BUILTIN)
def test_search_space_gives_params_the_family_accepts(name, datasets):
    fam = all_families()[name]
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(3):
        params = fam.space(study.ask(), Task.BINARY)
        assert params and set(params) <= set(fam.make(Task.BINARY, 0, **{**fam.defaults, **params}).get_params(deep=True)) | set(params)
        fam.make(Task.BINARY, 0, **{**fam.defaults, **params})  # builds without error


@pytest.mark.parametrize("library", ["lightgbm", "xgboost", "catboost"])
def test_boosting_stops_at_its_time_budget_with_a_whole_model(library):
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(4000, 20)), columns=[f"x{i}" for i in range(20)])
    y = (X["x0"] + rng.normal(size=4000) > 0).astype(int).to_numpy()
    t0 = time.perf_counter()
    model = Boosted(library, "binary", n_estimators=100_000, learning_rate=0.001, early_stopping_rounds=0, time_budget_s=1.0).fit(X, y)
    elapsed = time.perf_counter() - t0
    assert model.stopped_by_time_ and 0 < model.n_iter_ < 100_000
    assert elapsed < 10  # stopped near the budget, not after 100k trees
    assert model.predict_proba(X).shape == (4000, 2)


def test_boosting_early_stopping_uses_only_the_rows_it_is_given():
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    model = Boosted("lightgbm", "binary", n_estimators=5000, learning_rate=0.1).fit(X, y)
    assert model.n_iter_ < 5000  # early stopping kicked in on the internal split


def test_forest_grows_within_its_time_budget():
    X, y = load_breast_cancer(return_X_y=True)
    from sklearn.ensemble import RandomForestClassifier

    model = CodedTrees(RandomForestClassifier(n_estimators=100_000, random_state=0), time_budget_s=1.0, chunk=10).fit(X, y)
    assert 10 <= model.n_estimators_ < 100_000
    assert model.predict_proba(X).shape == (len(X), 2)


def test_a_forest_caps_its_leaves_to_fit_its_memory_share():
    import pickle

    from sklearn.ensemble import ExtraTreesRegressor

    from trainyard.models.trees import leaf_cap, node_bytes

    rng = np.random.default_rng(0)
    X = rng.normal(size=(6000, 5))
    y = X[:, 0] + rng.normal(size=6000)  # noisy: unpruned trees grow a leaf per row
    free = CodedTrees(ExtraTreesRegressor(n_estimators=20, random_state=0)).fit(X, y)
    capped = CodedTrees(ExtraTreesRegressor(n_estimators=20, random_state=0), memory_mb=1.0).fit(X, y)
    assert leaf_cap(20, 1, 1.0) == 1000  # 1 MB over 20 trees would be 347 leaves: the floor of 1,000 applies
    assert capped.max_leaf_nodes_ == 1000 and free.max_leaf_nodes_ is None
    assert max(t.tree_.n_leaves for t in capped.estimator_.estimators_) <= 1000 < min(t.tree_.n_leaves for t in free.estimator_.estimators_)
    assert len(pickle.dumps(capped)) < len(pickle.dumps(free)) / 4
    assert leaf_cap(300, 26, 400.0) == int(400e6 / (300 * 2 * node_bytes(26)))  # 2,450 leaves for 26 classes
    given = CodedTrees(ExtraTreesRegressor(n_estimators=5, max_leaf_nodes=50, random_state=0), memory_mb=1.0).fit(X, y)
    assert given.max_leaf_nodes_ == 50  # a cap the user gave stays


def test_a_bagged_forest_shares_its_memory_among_its_folds():
    from sklearn.ensemble import ExtraTreesRegressor

    from trainyard.models.ensemble import Bag

    rng = np.random.default_rng(0)
    X = rng.normal(size=(4000, 4))
    y = X[:, 0] + rng.normal(size=4000)
    bag = Bag(CodedTrees(ExtraTreesRegressor(n_estimators=60, random_state=0), memory_mb=40.0), n_folds=4, task="regression").fit(X, y)
    assert [m.memory_mb for m in bag.estimators_] == [10.0] * 4  # the bag's 40 MB, a quarter per fold
    assert bag.estimator.memory_mb == 40.0  # the template is left as it was


def test_unknown_family_in_include_is_an_error_with_suggestion():
    from trainyard.errors import ConfigError

    with pytest.raises(ConfigError, match="lightgbm"):
        choose_families(Task.BINARY, BUILTIN, ["lightgbmm"], None)


def test_preset_may_name_families_that_are_not_installed():
    chosen = choose_families(Task.BINARY, ["lightgbm", "no_such_optional_family"], None, None)
    assert [f.name for f in chosen] == ["lightgbm"]


def test_families_cli_lists_every_family(cli):
    import json

    res = cli("families", "--json")
    assert res.code == 0, res.output
    names = {row["name"] for row in json.loads(res.stdout)}
    assert set(BUILTIN) <= names
