"""A few rows through a fitted model without the pandas round-trip, where the model's parts allow it.

A single-row call through scikit-learn's ColumnTransformer and pandas categoricals costs milliseconds, most
of it bookkeeping. `compile_rows(model)` precomputes, once per loaded model, how a row (a dict) becomes the
"tree" preprocessing's feature vector (numbers as floats, categories as their codes, rare and unseen values
as the `__rare__` code: `trainyard.models.fastpath`'s plan) and how each ensemble member takes that vector
directly: LightGBM through its single-row C API, XGBoost through `inplace_predict` on one thread, CatBoost
with its category strings, scikit-learn trees with the codes. Members behind another preprocessing (linear
models: scaling, one-hot, target encoding) or of another kind keep the pipeline path for their part only.
The output is what `WeightedEnsemble` / the pipeline gives: class probabilities with one column per class
code, or regression values. `tests/test_rowpath.py` checks that both paths give the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np
import pandas as pd

from trainyard.data.schema import as_datetime
from trainyard.tasks import Task
from trainyard.models.compiled import LightGBMMember, two_columns
from trainyard.models.fastpath import (
    NAN,
    as_bool,
    as_float,
    is_missing,
    is_passthrough,
)

Rows = list  # list of dicts
Predictor = Callable[[np.ndarray], np.ndarray]


def compile_rows(model) -> Callable[[Rows], np.ndarray] | None:
    """A function rows -> model output, or None when nothing in the model can skip pandas."""
    from trainyard.models.ensemble import predictions

    task = model.task
    n_classes = len(model.classes) if task.is_classification else None
    found = _parts(model.pipeline)
    if found is None:
        return None
    preps, members = found
    encoders = {kind: _tree_encoder(prep) or _parts_encoder(prep) for kind, prep in preps.items()}
    plans: dict[str, list] = {kind: [] for kind in preps}  # kind -> [(weight, predictor taking the vector)]
    for kind, weight, est in members:
        encoder = encoders[kind]
        if isinstance(encoder, _TreeEncoder):
            fn = _vector_predictor(est, encoder, task, n_classes)
        else:  # the member's own predict on the encoded matrix (linear models, k-NN: already fast)
            fn = None if encoder is None else (lambda X, est=est: predictions(est, X, task, n_classes))
        plans[kind].append((weight, est, fn))
    vector_kinds = {kind for kind, encoder in encoders.items()
                    if encoder is not None and all(fn is not None for _, _, fn in plans[kind])}
    if not vector_kinds:
        return None

    def predict(rows: Rows) -> np.ndarray:
        total = None
        frame = None
        for kind, parts in plans.items():
            if kind in vector_kinds:
                X = encoders[kind].encode(rows)
                outs = [(w, fn(X)) for w, _, fn in parts]
            else:  # this preprocessing has no row path: the pipeline's own transform, for these members only
                if frame is None:
                    frame = pd.DataFrame(rows)
                Xt = preps[kind].transform(frame)
                outs = [(w, predictions(est, Xt, task, n_classes)) for w, est, _ in parts]
            for w, out in outs:
                total = w * out if total is None else total + w * out
        return total

    predict.row_kinds = sorted(vector_kinds)  # type: ignore[attr-defined]
    predict.lightgbm_members = [m for kind in vector_kinds for _, _, fn in plans[kind]  # type: ignore[attr-defined]
                                if isinstance(m := getattr(fn, "inner", fn), LightGBMMember)]  # what a server may compile
    return predict


def _parts(pipe):
    """({kind: fitted preprocessor}, [(kind, weight, fitted estimator)]) for a Pipeline(prep, model) or a
    WeightedEnsemble (bagged members are split into their fold models, each with its share of the weight)."""
    from sklearn.pipeline import Pipeline

    from trainyard.models.ensemble import Bag, WeightedEnsemble

    if isinstance(pipe, Pipeline) and len(pipe.steps) == 2:
        return {"tree": pipe.steps[0][1]}, [("tree", 1.0, pipe.steps[1][1])]
    if not isinstance(pipe, WeightedEnsemble) or not hasattr(pipe, "members_"):
        return None
    members = []
    for kind, member, weight in zip(pipe.kinds_, pipe.members_, pipe.weights):
        inner = list(member.estimators_) if isinstance(member, Bag) else [member]
        members.extend((kind, weight / len(inner), est) for est in inner)
    return dict(pipe.preps_), members


class _TreeEncoder:
    """Rows -> float64 matrix in the tree preprocessing's column order (fastpath's per-column plan)."""

    def __init__(self, features, fns, categories, names=None):
        self.features, self.fns = features, fns
        self.names = names  # the preprocessing's output column names, position by position (None if unknown)
        self.categories = categories  # per position: the category names (codes index them), or None for numbers

    def encode(self, rows: Rows) -> np.ndarray:
        return np.array([[fn(row.get(col)) for col, fn in zip(self.features, self.fns)] for row in rows], dtype=np.float64)


def _coercer_and_columns(prep):
    """(SchemaCoercer, ColumnTransformer) of trainyard's preprocessing Pipeline, or None for any other shape."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    from trainyard.data.prepare import SchemaCoercer

    if not (isinstance(prep, Pipeline) and len(prep.steps) == 2):
        return None
    coercer, columns = prep.steps[0][1], prep.steps[1][1]
    if not (isinstance(coercer, SchemaCoercer) and isinstance(columns, ColumnTransformer)):
        return None
    return coercer, columns


def _tree_encoder(prep) -> _TreeEncoder | None:
    from trainyard.data.prepare import RARE, CategoricalCodes, DatetimeFeatures
    found = _coercer_and_columns(prep)
    if found is None:
        return None
    coercer, columns = found
    features, fns, categories = [], [], []
    for name, transformer, cols in columns.transformers_:
        if transformer == "drop" or (name == "remainder" and len(cols) == 0):
            continue
        if isinstance(transformer, CategoricalCodes):
            for col in cols:
                cats = list(transformer.categories_[col])
                codes = {str(cat): float(i) for i, cat in enumerate(cats)}
                grouped = getattr(transformer, "group_rare_", False)
                other = float(len(codes)) if grouped else NAN  # rare and unseen values share '__rare__' (last code)
                features.append(col)
                fns.append(lambda v, codes=codes, other=other: NAN if is_missing(v) else codes.get(str(v).strip(), other))
                categories.append(cats + [RARE] if grouped else cats)
        elif is_passthrough(transformer):
            for col in cols:
                role = coercer.roles_.get(col)
                if role not in ("numeric", "boolean"):
                    return None
                features.append(col)
                fns.append(as_float if role == "numeric" else as_bool)
                categories.append(None)
        elif isinstance(transformer, DatetimeFeatures):
            for col in transformer.columns_:
                for i, _ in enumerate((*DatetimeFeatures.PARTS, "days")):
                    features.append(col)
                    fns.append(lambda v, i=i: NAN if is_missing(v) else _date_parts(v)[i])
                    categories.append(None)
        else:  # text: no row path
            return None
    try:
        names = [str(n) for n in columns.get_feature_names_out()]
    except Exception:
        names = None
    return _TreeEncoder(features, fns, categories, names if names is not None and len(names) == len(features) else None)


@lru_cache(maxsize=65536)
def _date_parts(value) -> tuple:
    """DatetimeFeatures' numbers for one value, parsed as the pipeline parses it (`as_datetime`)."""
    from trainyard.data.prepare import DatetimeFeatures

    d = as_datetime(pd.Series([value])).iloc[0]
    if pd.isna(d):
        return (float("nan"),) * (len(DatetimeFeatures.PARTS) + 1)
    days = (d - pd.Timestamp("1970-01-01")).total_seconds() / 86400.0
    return (*(float(getattr(d, part)) for part in DatetimeFeatures.PARTS), days)


class _PartsEncoder:
    """Rows -> the ColumnTransformer's output, calling each fitted part on a small numpy array of its columns
    (the same values the DataFrame path hands it) instead of going through pandas and the ColumnTransformer."""

    def __init__(self, parts):
        self.parts = parts  # [(transformer, [(column, coerce)])]

    def encode(self, rows: Rows) -> np.ndarray:
        import warnings

        blocks = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "X does not have valid feature names": by design here
            for transformer, cols in self.parts:
                values = np.array([[fn(row.get(col)) for col, fn in cols] for row in rows], dtype=object)
                if all(fn is not _as_text for _, fn in cols):
                    values = values.astype(np.float64)
                out = transformer.transform(values)
                blocks.append(out.toarray() if hasattr(out, "toarray") else np.asarray(out, dtype=np.float64))
        return np.hstack(blocks)


def _as_text(value):
    """SchemaCoercer's categorical coercion, as the imputer then sees it: NaN for missing (scikit-learn reads the
    DataFrame's None as missing, but not a None inside a numpy object array), else the stripped text."""
    return np.nan if is_missing(value) or value is pd.NA else str(value).strip()


def _parts_encoder(prep) -> _PartsEncoder | None:
    found = _coercer_and_columns(prep)
    if found is None:
        return None
    coercer, columns = found
    coerce = {"numeric": as_float, "boolean": as_bool, "categorical": _as_text}
    parts = []
    for name, transformer, cols in columns.transformers_:
        if transformer == "drop" or (name == "remainder" and len(cols) == 0):
            continue
        roles = [coercer.roles_.get(col) for col in cols]
        if isinstance(transformer, str) or any(role not in coerce for role in roles):
            return None  # passthrough, dates, text: not here
        parts.append((transformer, [(col, coerce[role]) for col, role in zip(cols, roles)]))
    return _PartsEncoder(parts)


def _vector_predictor(est, encoder: _TreeEncoder, task: Task, n_classes: int | None) -> Predictor | None:
    """A function feature matrix -> output in the ensemble's layout for one fitted member, or None."""
    from lightgbm import LGBMModel

    from trainyard.models.boosting import Boosted
    from trainyard.models.trees import CodedTrees

    classes = getattr(est, "classes_", None)
    if isinstance(est, Boosted):
        library, inner = est.library, est.model_
    elif isinstance(est, LGBMModel):
        library, inner = "lightgbm", est
    elif isinstance(est, CodedTrees):
        library, inner = "sklearn", est.estimator_
    elif type(est).__name__ == "MLP" and type(est).__module__ == "trainyard.models.mlp":
        library, inner = "mlp", est
    else:
        return None
    raw = {"lightgbm": _lightgbm, "xgboost": _xgboost, "catboost": _catboost, "sklearn": _sklearn, "mlp": _mlp}[library](inner, encoder, task)
    if raw is None:
        return None
    if task is Task.REGRESSION:
        return raw
    codes = np.asarray(classes if classes is not None else np.arange(n_classes)).astype(int)
    if np.array_equal(codes, np.arange(n_classes)):
        return raw

    def remapped(X):  # a fold that missed a class: its columns go to their class codes
        proba = raw(X)
        full = np.zeros((proba.shape[0], n_classes))
        full[:, codes] = proba
        return full

    remapped.inner = raw  # type: ignore[attr-defined]
    return remapped


def _lightgbm(model, encoder, task) -> Predictor | None:
    booster = model.booster_
    if booster.num_feature() != len(encoder.features):
        return None
    return LightGBMMember(booster, task)


def _xgboost(model, encoder, task) -> Predictor | None:
    booster = model.get_booster().copy()  # a private copy: one thread here, the saved model keeps its setting
    if booster.num_features() != len(encoder.features):
        return None
    booster.set_param({"nthread": 1})
    best = getattr(model, "best_iteration", None)
    limit = (0, best + 1) if best is not None else (0, 0)
    multiclass = task is Task.MULTICLASS

    def predict(X):
        out = np.asarray(booster.inplace_predict(X, iteration_range=limit), dtype=float)
        if task is Task.REGRESSION or multiclass:
            return out
        return two_columns(out)

    return predict


def _catboost(model, encoder, task) -> Predictor | None:
    from trainyard.models.boosting import CAT_MISSING

    cat_positions = [i for i, cats in enumerate(encoder.categories) if cats is not None]
    if sorted(model.get_cat_feature_indices()) != cat_positions:
        return None

    def predict(X):
        rows = []
        for v in X:
            row = list(v)
            for i in cat_positions:
                code = v[i]
                row[i] = CAT_MISSING if np.isnan(code) else str(encoder.categories[i][int(code)])
            rows.append(row)
        if task is Task.REGRESSION:
            return np.asarray(model.predict(rows), dtype=float).reshape(-1)
        return np.asarray(model.predict_proba(rows), dtype=float).reshape(len(rows), -1)

    return predict


def _sklearn(model, encoder, task) -> Predictor | None:
    """A scikit-learn tree or forest, tree by tree through `tree_.predict` (what its predict does, without the
    per-tree input checks and joblib dispatch that dominate a one-row call)."""
    if getattr(model, "n_features_in_", len(encoder.features)) != len(encoder.features):
        return None
    trees = list(getattr(model, "estimators_", [model]))
    if not trees or not all(hasattr(t, "tree_") and getattr(t, "n_outputs_", 1) == 1 for t in trees):
        return None
    regression = task is Task.REGRESSION

    def predict(X):
        X32 = np.ascontiguousarray(X, dtype=np.float32)
        total = None
        for t in trees:
            out = t.tree_.predict(X32)
            if regression:
                out = out[:, 0]
            else:
                out = out[:, : t.n_classes_]
                norm = out.sum(axis=1, keepdims=True)
                norm[norm == 0.0] = 1.0
                out = out / norm
            total = out if total is None else total + out
        return np.asarray(total / len(trees), dtype=float)

    return predict


def _mlp(model, encoder, task) -> Predictor | None:
    """trainyard's tabular MLP: its own encoding (standardised numbers + missing flags, category codes + 1) from the
    vector, then the network under inference_mode."""
    if encoder.names is None:
        return None
    pos = {name: i for i, name in enumerate(encoder.names)}
    if any(c not in pos for c in (*model.num_cols_, *model.cat_cols_)):
        return None
    num_idx = [pos[c] for c in model.num_cols_]
    cat_idx = [pos[c] for c in model.cat_cols_]

    def predict(X):
        import torch

        num = X[:, num_idx] if num_idx else np.zeros((len(X), 0))
        missing = np.isnan(num[:, model.missing_cols_]).astype(np.float32)
        num = np.clip(np.nan_to_num((num - model.num_mean_) / model.num_std_), -10, 10)
        x_num = torch.from_numpy(np.hstack([num.astype(np.float32), missing]))
        codes = X[:, cat_idx] if cat_idx else np.zeros((len(X), 0))
        x_cat = torch.from_numpy(np.where(np.isnan(codes), 0, codes + 1).astype(np.int64))
        device = model._device()
        model.module_.eval()
        with torch.inference_mode():
            out = model.module_(x_num.to(device), x_cat.to(device)).float().cpu().numpy().astype(np.float64)
        if task is Task.REGRESSION:
            return out[:, 0] * model.y_std_ + model.y_mean_
        e = np.exp(out - out.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    return predict
