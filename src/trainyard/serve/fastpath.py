"""Predicting a few rows without a pandas round-trip.

For the pipeline shape trainyard's tree families produce (SchemaCoercer -> ColumnTransformer of
CategoricalCodes + passthrough numbers -> LightGBM), `compile_rows(model)` precomputes, once per
loaded version, where each input column lands in the model's feature vector and the code of every
category. A row then becomes a float64 vector with a dict lookup per categorical column, and goes
straight to the LightGBM booster (or boosters: an AutoML ensemble or bag of LightGBM models is a weighted
sum of their outputs). Anything else (other families, mixed ensembles, datetime or text columns)
gets `None` and the caller uses the DataFrame path with a cached column order. `tests/test_serve_fastpath.py`
checks that both paths give the same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from trainyard.tasks import Task

NAN = float("nan")


def _as_float(value) -> float:
    if value is None:
        return NAN
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(str(value).strip())
    except ValueError:
        return NAN


_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}


def _as_bool(value) -> float:
    if value is None:
        return NAN
    if isinstance(value, (bool, int, float)):
        return float(value) if not (isinstance(value, float) and math.isnan(value)) else NAN
    text = str(value).strip().lower()
    return 1.0 if text in _TRUE else 0.0 if text in _FALSE else NAN


def _is_passthrough(transformer) -> bool:
    from sklearn.preprocessing import FunctionTransformer

    if isinstance(transformer, str):
        return transformer == "passthrough"
    # A fitted ColumnTransformer stores 'passthrough' as an identity FunctionTransformer.
    return isinstance(transformer, FunctionTransformer) and transformer.func is None


def _lightgbm_parts(model):
    """(preprocessor, [(weight, fitted LGBMModel)]) when every part of the model is LightGBM behind the tree
    preprocessing (a plain pipeline, or an AutoML ensemble of LightGBM members, bagged or not); else None."""
    from trainyard.models.unwrap import tree_parts

    parts = tree_parts(model)
    if parts is None or parts.libraries != {"lightgbm"}:
        return None
    return parts.prep, [(w, m) for w, _, m in parts.members]


def compile_rows(model) -> Callable[[list[dict]], np.ndarray] | None:
    """A function rows -> model output (probabilities for classifiers, values for regression), or None."""
    try:
        from sklearn.compose import ColumnTransformer
        from sklearn.pipeline import Pipeline

        from trainyard.data.prepare import CategoricalCodes, SchemaCoercer

        found = _lightgbm_parts(model)
    except ImportError:
        return None
    if found is None:
        return None
    prep, parts = found
    if not (isinstance(prep, Pipeline) and len(prep.steps) == 2):
        return None
    coercer, columns = prep.steps[0][1], prep.steps[1][1]
    if not (isinstance(coercer, SchemaCoercer) and isinstance(columns, ColumnTransformer)):
        return None
    roles = coercer.roles_
    plan: list[tuple[str, Callable]] = []  # (input column, value -> float), in the model's feature order
    for name, transformer, cols in columns.transformers_:
        if transformer == "drop" or (name == "remainder" and len(cols) == 0):
            continue
        if isinstance(transformer, CategoricalCodes):
            for col in cols:
                codes = {str(cat): float(i) for i, cat in enumerate(transformer.categories_[col])}
                # rare and unseen values share the '__rare__' category (its code follows the kept ones)
                other = float(len(codes)) if getattr(transformer, "group_rare_", False) else NAN
                plan.append((col, lambda v, codes=codes, other=other: NAN if _missing(v) else codes.get(str(v).strip(), other)))
        elif _is_passthrough(transformer):
            for col in cols:
                role = roles.get(col)
                if role == "numeric":
                    plan.append((col, _as_float))
                elif role == "boolean":
                    plan.append((col, _as_bool))
                else:
                    return None
        else:
            return None
    features = [c for c, _ in plan]
    fns = [f for _, f in plan]
    task = model.task
    n_classes = 0 if task is Task.REGRESSION else len(model.classes)
    boosters = []
    for weight, estimator in parts:
        booster = estimator.booster_
        if booster.num_feature() != len(plan):
            return None
        # Ask for exactly the trees sklearn's predict would use (best_iteration_ when early-stopped).
        best = booster.best_iteration if booster.best_iteration > 0 else None
        objective = str(booster.params.get("objective", getattr(estimator, "objective_", "")))
        if n_classes and n_classes > 2 and "multiclass" not in objective and "softmax" not in objective:
            return None
        single = SingleRowBooster.create(booster, len(fns), max(n_classes, 1) if n_classes > 2 else 1, best)
        boosters.append((weight, booster, best, single))

    def predict(rows: list[dict]) -> np.ndarray:
        total = None
        vectors = [[fn(row.get(col)) for col, fn in zip(features, fns)] for row in rows]
        for weight, booster, best, single in boosters:
            if single is not None and len(rows) <= SINGLE_ROW_LIMIT:
                out = np.array([single.predict(v) for v in vectors])
                out = out[:, 0] if out.shape[1] == 1 else out
            else:
                out = booster.predict(np.array(vectors, dtype=np.float64), num_iteration=best, num_threads=1)
            total = weight * out if total is None else total + weight * out
        if n_classes == 2:
            return np.column_stack([1.0 - total, total])
        return total

    predict.features = features  # type: ignore[attr-defined]
    return predict


SINGLE_ROW_LIMIT = 64


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


class SingleRowBooster:
    """LightGBM's single-row C API (LGBM_BoosterPredictForMatSingleRowFast): a few microseconds per row
    instead of the ~80 us `Booster.predict` spends building a predictor on every call. One thread,
    guarded by a lock because the fast config holds a buffer."""

    def __init__(self, lib, handle, n_out: int, booster):
        import ctypes
        import threading

        self._lib, self._handle, self._booster = lib, handle, booster  # keep the booster alive
        self._out = np.empty(n_out, dtype=np.float64)
        self._out_ptr = self._out.ctypes.data_as(ctypes.POINTER(ctypes.c_double))
        self._len = ctypes.c_int64(0)
        self._len_ref = ctypes.byref(self._len)
        self._row = np.empty(booster.num_feature(), dtype=np.float64)
        self._row_ptr = self._row.ctypes.data_as(ctypes.c_void_p)
        self._lock = threading.Lock()

    @classmethod
    def create(cls, booster, n_features: int, n_out: int, best_iteration: int | None) -> "SingleRowBooster | None":
        import ctypes

        try:
            from lightgbm.basic import _LIB, _safe_call
        except ImportError:
            return None
        if not hasattr(_LIB, "LGBM_BoosterPredictForMatSingleRowFastInit"):
            return None
        handle = ctypes.c_void_p()
        _safe_call(_LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
            booster._handle, ctypes.c_int(0), ctypes.c_int(0), ctypes.c_int(best_iteration or -1),
            ctypes.c_int(1), ctypes.c_int32(n_features), ctypes.c_char_p(b"num_threads=1"), ctypes.byref(handle)))
        return cls(_LIB, handle, n_out, booster)

    def predict(self, values: list[float]) -> np.ndarray:
        with self._lock:
            self._row[:] = values
            ret = self._lib.LGBM_BoosterPredictForMatSingleRowFast(self._handle, self._row_ptr, self._len_ref, self._out_ptr)
            if ret != 0:
                from lightgbm.basic import _safe_call

                _safe_call(ret)
            return self._out.copy()

    def __del__(self):
        try:
            self._lib.LGBM_FastConfigFree(self._handle)
        except Exception:
            pass
