"""The row-level pieces of the serving fast path.

The fast path is the model's few-rows path (`TrainyardModel.rows_fn`, built by `trainyard.models.rowpath`:
rows -> feature vectors with plain Python, members fed directly, no pandas round-trip); this module holds the
value coercions it shares with ONNX export and `SingleRowBooster`, LightGBM's single-row C API. tests/test_rowpath.py,
test_preparation.py and test_automl_search.py check that the fast path gives the pipeline's numbers.
"""

from __future__ import annotations

import math

import numpy as np

NAN = float("nan")


def as_float(value) -> float:
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


def as_bool(value) -> float:
    if value is None:
        return NAN
    if isinstance(value, (bool, int, float)):
        return float(value) if not (isinstance(value, float) and math.isnan(value)) else NAN
    text = str(value).strip().lower()
    return 1.0 if text in _TRUE else 0.0 if text in _FALSE else NAN


def is_passthrough(transformer) -> bool:
    from sklearn.preprocessing import FunctionTransformer

    if isinstance(transformer, str):
        return transformer == "passthrough"
    # A fitted ColumnTransformer stores 'passthrough' as an identity FunctionTransformer.
    return isinstance(transformer, FunctionTransformer) and transformer.func is None


SINGLE_ROW_LIMIT = 64


def is_missing(value) -> bool:
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
