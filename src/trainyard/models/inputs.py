"""Input checks the trainyard estimators share, so they keep scikit-learn's contract.

Arrays go through `sklearn.utils.validation.validate_data` (2-D, numeric, finite
or NaN as the estimator allows, at least one row and one column, the number of
features and their names recorded at fit and checked at predict). DataFrames
are what the "tree" preprocessing hands the table families: numeric columns
with NaN and pandas categoricals. They are checked the same way but kept as
DataFrames, so the libraries still see the categoricals.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.utils import assert_all_finite
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_array, check_consistent_length, column_or_1d, validate_data


def check_features(estimator, X, *, reset: bool, allow_nan: bool, min_samples: int = 1) -> pd.DataFrame | np.ndarray:
    """X checked (and, at fit, `n_features_in_` / `feature_names_in_` recorded): a DataFrame stays one, anything else
    becomes a 2-D numeric array. `allow_nan`: missing values pass (the model handles them); infinities never do.
    `min_samples`: the fewest rows accepted (a fit may need more than one)."""
    finite = "allow-nan" if allow_nan else True
    if not isinstance(X, pd.DataFrame):
        return validate_data(estimator, X, reset=reset, dtype="numeric", ensure_all_finite=finite, ensure_min_samples=min_samples)
    validate_data(estimator, X, reset=reset, skip_check_array=True)
    if X.shape[0] < min_samples or X.shape[1] < 1:
        raise ValueError(f"Found array with {X.shape[0]} sample(s) and {X.shape[1]} feature(s) (shape={X.shape}) "
                         f"while a minimum of {min_samples} sample(s) and 1 feature is required.")
    categorical = [c for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)]
    numeric = X.drop(columns=categorical)
    types = pd.api.types
    wrong = [str(c) for c, kind in numeric.dtypes.items() if not types.is_numeric_dtype(kind) or types.is_complex_dtype(kind)]
    if wrong:
        raise ValueError(f"Columns {', '.join(wrong[:5])} are neither numbers nor pandas categoricals "
                         "(the table families' preprocessing turns text columns into categoricals).")
    if numeric.shape[1]:
        assert_all_finite(numeric.to_numpy(dtype=np.float64, na_value=np.nan), allow_nan=allow_nan, input_name="X")
    return X


def check_target(estimator, X, y, *, regression: bool) -> np.ndarray:
    """y as a 1-D array of as many rows as X: finite numbers for regression, class labels otherwise."""
    y = check_array(y, ensure_2d=False, dtype="numeric" if regression else None, input_name="y", estimator=estimator)
    y = column_or_1d(y, warn=True)
    check_consistent_length(X, y)
    if not regression:
        check_classification_targets(y)
    return y


def check_weights(sample_weight, X) -> np.ndarray | None:
    """None, or one non-negative weight per row of X, not all zero."""
    if sample_weight is None:
        return None
    return _check_sample_weight(sample_weight, X, ensure_non_negative=True)
