"""Observation and action spaces as saved with a policy (plain JSON), without Gymnasium: the serving side's view.

`check_observations` is what /v1/act and `trainyard predict` run on their input: the shape, the dtype (real
numbers, finite) and the bounds of the observation space the policy was trained on.
"""

from __future__ import annotations

import numpy as np

from trainyard.errors import DataError


def bounds(values, fill: float) -> np.ndarray:
    """Saved bounds (None where unbounded) as floats, `fill` (an infinity) for None."""
    return np.array([fill if v is None else v for v in values], dtype=np.float64)


def env_action(actions: np.ndarray, low, high, squash: str) -> np.ndarray:
    """Continuous network outputs -> actions in the bounds: clipped, or tanh-squashed into [low, high]."""
    low = bounds(low, -np.inf).astype(np.float32)
    high = bounds(high, np.inf).astype(np.float32)
    if squash == "tanh":
        return (low + (np.tanh(actions) + 1.0) * 0.5 * (high - low)).astype(np.float32)
    return np.clip(actions, low, high).astype(np.float32)


def check_observations(values, space: dict, *, batch: bool) -> np.ndarray:
    """A (n, obs_dim) float32 array from JSON-like input, or a `DataError` naming what is wrong."""
    shape = tuple(space["obs_shape"])
    try:
        arr = np.asarray(values)
    except (ValueError, TypeError) as exc:  # ragged lists
        raise DataError(f"The observation is not a regular array: {exc}", f"send an array of shape {list(shape)}.") from exc
    if arr.dtype == object or arr.dtype.kind not in "iuf":
        raise DataError(f"The observation holds {arr.dtype.name} values, not numbers.", f"send numbers in an array of shape {list(shape)}.")
    expected = ((arr.shape[0],) if batch and arr.ndim >= 1 else ()) + shape
    if arr.shape != expected or (batch and arr.ndim == 0):
        what = "observations" if batch else "observation"
        raise DataError(f"The {what} have shape {list(arr.shape)}; the policy takes {list(shape)}" + (" per row." if batch else "."),
                        f"send {'a list of ' if batch else ''}arrays of shape {list(shape)}.")
    arr = arr.astype(np.float64).reshape(arr.shape[0] if batch else 1, -1)
    if not np.isfinite(arr).all():
        raise DataError("The observation holds NaN or infinite values.", "send finite numbers.")
    low, high = bounds(space["obs_low"], -np.inf), bounds(space["obs_high"], np.inf)
    tol = 1e-6 * np.maximum(1.0, np.abs(np.where(np.isfinite(low), low, 0)))
    bad = (arr < low - tol) | (arr > high + tol)
    if bad.any():
        row, col = map(int, np.argwhere(bad)[0])
        raise DataError(f"Observation value {arr[row, col]:g} at position {col} is outside the space's bounds "
                        f"[{low[col]:g}, {high[col]:g}].", "send observations from the environment the policy was trained on.")
    return arr.astype(np.float32)
