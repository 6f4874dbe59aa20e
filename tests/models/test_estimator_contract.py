"""scikit-learn's own contract suite, `check_estimator`, over the estimator of every trainyard family.

Table families (decision tree, forests, LightGBM, XGBoost, CatBoost, the MLP) run it whole, as classifier and as
regressor, configured as their family builds them (small sizes). Every check must pass, except those listed with
the reason: a library that fails a check on its own, shown by running the check on the bare library too.

The image and text estimators take images ((N, H, W[, C]) arrays or paths) and texts (strings), not the 2-D
numeric rows the suite feeds: the suite's API checks must pass, and each data check is listed as an expected
failure whose exception must be the estimator refusing rows that are not images / texts (so a check failing for
any other reason fails here). What those checks test is then tested on images and texts (`_native_contract`).

The linear and k-NN families build scikit-learn's own estimators, which scikit-learn's suite checks.
`Bag` and `WeightedEnsemble` (models/ensemble.py) are search internals built from family estimators
(`WeightedEnsemble` needs preprocessors and members); `test_bag_keeps_the_contract_that_applies` tests them.
"""

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor
from sklearn.utils.estimator_checks import check_estimator, check_sample_weight_equivalence_on_dense_data

from trainyard.errors import DataError
from trainyard.models.families import get_family
from trainyard.tasks import Task

SMALL = {"lightgbm": {"n_estimators": 30}, "xgboost": {"n_estimators": 30}, "catboost": {"n_estimators": 30},
         "random_forest": {"n_estimators": 10}, "extra_trees": {"n_estimators": 10}, "decision_tree": {},
         "mlp": {"hidden": (16,), "epochs": 6, "batch_size": 64, "lr": 0.02}}

WEIGHTS_NOT_REPEATS = "check_sample_weight_equivalence_on_dense_data"
# Checks a library fails by itself (test_the_libraries_fail_these_checks_by_themselves runs them on the bare library).
LIBRARY_FAILS = {
    ("xgboost", Task.BINARY): "XGBoost's own XGBClassifier fails it (weighted and repeated rows give predictions apart by "
                              "more than 1e-7), and the family's subsample=0.8 draws rows, so a weight is not a repeat",
    ("xgboost", Task.REGRESSION): "the family's subsample=0.8 draws rows, so a weighted row is not a repeated one",
    ("catboost", Task.BINARY): "CatBoost's own classifier fails it: ordered boosting computes each row's gradient from "
                               "the rows before it in random permutations, where a repeated row is two rows",
    ("catboost", Task.REGRESSION): "CatBoost's own regressor fails it: ordered boosting computes each row's gradient from "
                                   "the rows before it in random permutations, where a repeated row is two rows",
    ("decision_tree", Task.BINARY): "the family's min_samples_leaf=5 counts rows, not weight: scikit-learn's own tree with "
                                    "it fails too (a row weighted 2 is one row of a leaf, repeated it is two)",
    ("decision_tree", Task.REGRESSION): "the family's min_samples_leaf=5 counts rows, not weight: scikit-learn's own tree with "
                                        "it fails too (a row weighted 2 is one row of a leaf, repeated it is two)",
    ("random_forest", Task.BINARY): "scikit-learn lists it as an expected failure of RandomForestClassifier itself "
                                    "(bootstrap resampling draws rows: a weight is not a repeat)",
    ("random_forest", Task.REGRESSION): "scikit-learn lists it as an expected failure of RandomForestRegressor itself "
                                        "(bootstrap resampling draws rows: a weight is not a repeat)",
}


def _table_estimator(family: str, task: Task):
    fam = get_family(family)
    return fam.make(task, 0, **{**fam.defaults, **SMALL[family]})


def _run(estimator, expected_failed: dict | None = None) -> list[dict]:
    results = check_estimator(estimator, expected_failed_checks=expected_failed or {}, on_fail=None, on_skip=None)
    failed = [f"{r['check_name']}: {r['exception']!r}"[:300] for r in results if r["status"] == "failed"]
    unexpectedly_passed = [r["check_name"] for r in results if r["status"] == "passed" and r["expected_to_fail"]]
    assert not failed, "\n".join(failed)
    assert not unexpectedly_passed, f"listed as failing but passed: {unexpectedly_passed}"
    assert sum(r["status"] == "passed" for r in results) >= 15
    return results


TABLE_CASES = [(f, t) for f in ("decision_tree", "random_forest", "extra_trees", "lightgbm", "xgboost", "catboost")
               for t in (Task.BINARY, Task.REGRESSION)]


@pytest.mark.parametrize(("family", "task"), TABLE_CASES, ids=[f"{f}-{t.value}" for f, t in TABLE_CASES])
def test_table_family_estimators_pass_check_estimator(family, task):
    reason = LIBRARY_FAILS.get((family, task))
    _run(_table_estimator(family, task), {WEIGHTS_NOT_REPEATS: reason} if reason else None)


@pytest.mark.slow
@pytest.mark.parametrize("task", [Task.BINARY, Task.REGRESSION], ids=["binary", "regression"])
def test_mlp_passes_check_estimator(task):
    import torch

    torch.set_num_threads(1)
    _run(_table_estimator("mlp", task))


def test_the_libraries_fail_these_checks_by_themselves():
    import catboost
    import xgboost

    bare = {"xgboost": xgboost.XGBClassifier(n_estimators=30, tree_method="hist", n_jobs=1, random_state=0),
            "catboost-classifier": catboost.CatBoostClassifier(iterations=30, thread_count=1, random_seed=0, verbose=False, allow_writing_files=False),
            "catboost-regressor": catboost.CatBoostRegressor(iterations=30, thread_count=1, random_seed=0, verbose=False, allow_writing_files=False),
            "tree-classifier": DecisionTreeClassifier(min_samples_leaf=5, random_state=0),
            "tree-regressor": DecisionTreeRegressor(min_samples_leaf=5, random_state=0)}
    for name, estimator in bare.items():
        with pytest.raises(AssertionError, match="not equivalent"):
            check_sample_weight_equivalence_on_dense_data(name, estimator)
    # without the leaf-size limit, scikit-learn's tree (and so the family's) keeps the contract
    check_sample_weight_equivalence_on_dense_data("tree", _table_estimator("decision_tree", Task.BINARY).set_params(estimator__min_samples_leaf=1))


# image and text estimators --------------------------------------------------------------------------------------------

NOT_ROWS = ("the check fits 2-D numeric rows; {name} takes {takes} and refuses rows with a DataError")
ROW_CHECKS = {
    "check_fit_score_takes_y", "check_estimators_overwrite_params", "check_dont_overwrite_parameters",
    "check_estimators_fit_returns_self", "check_readonly_memmap_input", "check_n_features_in_after_fitting",
    "check_positive_only_tag_during_fit", "check_estimators_dtypes", "check_dtype_object",
    "check_estimators_empty_data_messages", "check_pipeline_consistency", "check_estimators_nan_inf",
    "check_estimators_pickle", "check_f_contiguous_array_estimator", "check_supervised_y_2d",
    "check_methods_sample_order_invariance", "check_methods_subset_invariance", "check_fit2d_1sample",
    "check_fit2d_1feature", "check_dict_unchanged", "check_fit_idempotent", "check_fit_check_is_fitted",
    "check_n_features_in", "check_fit1d", "check_fit2d_predict1d", "check_supervised_y_no_nan", "check_complex_data",
}
CLASSIFIER_ROW_CHECKS = {"check_classifier_data_not_an_array", "check_classifiers_one_label",
                         "check_classifiers_classes", "check_classifiers_train",
                         "check_classifiers_regression_target"}
REGRESSOR_ROW_CHECKS = {"check_regressor_data_not_an_array", "check_regressors_train", "check_regressors_int",
                        "check_regressors_no_decision_function", "check_regressor_multioutput"}


def _expected_row_failures(estimator, takes: str) -> dict:
    from sklearn.base import is_classifier

    checks = ROW_CHECKS | (CLASSIFIER_ROW_CHECKS if is_classifier(estimator) else REGRESSOR_ROW_CHECKS)
    reason = NOT_ROWS.format(name=type(estimator).__name__, takes=takes)
    return {name: reason for name in checks}


def _refused_rows(exc) -> bool:
    """Is the refusal of non-image / non-text rows somewhere in the exception's chain?"""
    while exc is not None:
        if isinstance(exc, DataError) and ("Images must be" in str(exc) or "Texts must be" in str(exc)):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _run_refusing_rows(estimator, takes: str):
    results = _run(estimator, _expected_row_failures(estimator, takes))
    other = [r["check_name"] for r in results if r["status"] == "xfail" and not _refused_rows(r["exception"])]
    assert not other, f"these checks failed for another reason than rows that are not {takes}: {other}"


def _images(n=48, seed=0):
    rng = np.random.default_rng(seed)
    y = np.array(["ring", "dot"])[rng.integers(0, 2, n)]
    X = rng.uniform(0, 60, size=(n, 8, 8)).astype(np.uint8)
    X[y == "dot", 3:5, 3:5] = 255
    return X, y


def _native_contract(make, X, y, bad_inputs):
    """What check_estimator's data checks test, on the inputs the estimator takes."""
    estimator = make()
    with pytest.raises(NotFittedError):
        estimator.predict(X)
    assert estimator.fit(X, y) is estimator
    proba = estimator.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert set(estimator.predict(X)) <= set(y) and list(estimator.classes_) == sorted(set(y))
    np.testing.assert_allclose(make().fit(X, y).predict_proba(X), proba, rtol=1e-5, atol=1e-6)  # same seed, same model
    np.testing.assert_allclose(pickle.loads(pickle.dumps(estimator)).predict_proba(X), proba)
    np.testing.assert_allclose(estimator.predict_proba(X[5:9]), proba[5:9], rtol=1e-5, atol=1e-6)  # rows independent
    for bad in bad_inputs:
        with pytest.raises((ValueError, TypeError, DataError)):
            make().fit(bad, y[: len(bad)])
    with pytest.raises(ValueError):
        make().fit(X, y[:-1])  # as many labels as inputs
    twice = clone(estimator).set_params(loop=estimator.default_loop(epochs=2)).fit(X, y)
    assert twice.n_steps_ == 2 * estimator.n_steps_  # the loop is a parameter: set_params / clone see it


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory):
    """A one-layer, 16-wide BERT with MiniLM's tokenizer, random weights: the text estimators' code path in seconds."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    from trainyard.models.text import encoder_path

    folder = tmp_path_factory.mktemp("tiny-encoder")
    tokenizer = AutoTokenizer.from_pretrained(encoder_path("minilm"))
    tokenizer.save_pretrained(folder)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=64)
    BertModel(config).save_pretrained(folder)
    return str(folder)


def test_image_classifier_passes_the_checks_that_apply():
    import torch

    from trainyard.models.image import ImageClassifier

    torch.set_num_threads(1)

    def make():
        return ImageClassifier.build(0, {"width": 4, "epochs": 1, "batch_size": 16, "augment": False})

    _run_refusing_rows(make(), "images, an (N, H, W[, C]) array or a list of paths")
    X, y = _images()
    nan = X.astype(np.float32)
    nan[0, 0, 0] = np.nan
    _native_contract(make, X, y, [X[:0], nan, X.reshape(len(X), -1)])


def test_text_models_pass_the_checks_that_apply(tiny_encoder):
    import torch

    from trainyard.models.text import TextClassifier, TextRegressor

    torch.set_num_threads(1)
    takes = "texts, a list of strings"
    settings = {"model": tiny_encoder, "epochs": 1, "max_length": 8, "batch_size": 8, "lr": 1e-3}
    _run_refusing_rows(TextClassifier.build(0, settings), takes)
    _run_refusing_rows(TextRegressor.build(0, settings), takes)

    rng = np.random.default_rng(0)
    words = np.array(["good", "great", "bad", "awful", "film", "plot", "the"])
    X = [" ".join(rng.choice(words, 5)) for _ in range(40)]
    y = np.where([("good" in t) or ("great" in t) for t in X], "pos", "neg")
    _native_contract(lambda: TextClassifier.build(0, settings), X, y, [[], np.zeros((40, 3)), [*X[:-1], None]])
    with pytest.raises(NotFittedError):
        TextRegressor.build(0, settings).predict(X)
    regressor = TextRegressor.build(0, settings).fit(X, rng.normal(size=40))
    assert regressor.predict(X).shape == (40,) and np.isfinite(regressor.score(X, rng.normal(size=40)))
    with pytest.raises(ValueError):
        TextRegressor.build(0, settings).fit(X, np.r_[np.inf, rng.normal(size=39)])


# the search's ensembles ---------------------------------------------------------------------------------------------

def test_bag_and_weighted_ensemble_keep_the_contract_that_applies():
    """Left out of check_estimator: `Bag` takes the search's encoded targets (class codes 0..n_classes-1, n_classes given
    up front) and `WeightedEnsemble` a raw table for its per-kind preprocessors, not arbitrary rows and labels. What
    applies: parameters (nested ones included) through get_params / set_params / clone, NotFittedError, fit -> self,
    weights checked, pickling, and a refit of a saved ensemble (the v1 fixture) from its own parameters."""
    import pandas as pd

    from trainyard.models.boosting import Boosted
    from trainyard.registry.artifact import load_artifact
    from trainyard.models.ensemble import Bag

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(120, 3)), columns=["a", "b", "c"])
    y = (X["a"] + 0.3 * rng.normal(size=120) > 0).astype(int).to_numpy()
    bag = Bag(Boosted(n_estimators=20, num_leaves=4), n_folds=3, n_classes=2)
    assert bag.get_params()["estimator__num_leaves"] == 4
    bag = clone(bag).set_params(estimator__num_leaves=8)
    with pytest.raises(NotFittedError):
        bag.predict(X)
    with pytest.raises(ValueError):
        clone(bag).fit(X, y, sample_weight=np.ones(len(y) + 1))
    assert bag.fit(X, y) is bag and all(e.num_leaves == 8 for e in bag.estimators_)
    proba = bag.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert bag.oof_.shape == (120, 2) and (bag.predict(X) == y).mean() > 0.8
    np.testing.assert_allclose(pickle.loads(pickle.dumps(bag)).predict_proba(X), proba)

    from pathlib import Path

    fixtures = Path(__file__).resolve().parents[1] / "fixtures"
    model, _ = load_artifact(fixtures / "artifacts" / "v1-table-model")
    rows = pd.read_csv(fixtures / "boosted-v1-data.csv")
    ensemble = clone(model.pipeline)  # the saved WeightedEnsemble's parameters, unfitted
    with pytest.raises(NotFittedError):
        ensemble.predict(rows)
    refit = ensemble.fit(rows.drop(columns=["y", "z"]), (rows["y"] == "yes").astype(int).to_numpy())
    assert refit is ensemble and (refit.predict(rows) == (rows["y"] == "yes")).mean() > 0.8
