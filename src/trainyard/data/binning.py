"""Exact, fast counting of numeric values into reference quantile bins.

A column's bins are given by its edges e_0 < ... < e_{B-1} (reference quantiles); bin k holds the values with
exactly k edges below them, i.e. (e_{k-1}, e_k], so there are B + 1 bins. `np.searchsorted` does this exactly
but costs a branchy binary search per value (~70 ns on the development machines). `Binner` instead maps each
value to one of `CELLS` equal-width cells by arithmetic and looks its bin up in a table (one comparison more
when the cell holds one edge); only values in cells holding several edges (or outside [e_1, e_{B-2}]) take
the exact binary search. The result is
identical to searchsorted (tested) at a fraction of the cost.
"""

from __future__ import annotations

import numpy as np

LEVELS = 101  # quantile levels of the edges: every percentile
CELLS = 8192
BLOCK = 1 << 16
_MARGIN = 0.01  # cells within this fraction of a cell width of an edge count as containing it


def quantile_edges(values: np.ndarray, levels: int = LEVELS) -> np.ndarray:
    """Distinct values at `levels` evenly spaced quantiles of the non-missing values (real data points)."""
    v = np.asarray(values)
    v = np.sort(v[~np.isnan(v)])  # sorted in the data's own precision
    if v.size == 0:
        return np.empty(0)
    idx = np.round(np.linspace(0, v.size - 1, levels)).astype(np.int64)
    return np.unique(v[idx].astype(np.float64))


class Binner:
    """Counts of values per bin of fixed `edges`; NaN is counted apart as missing."""

    def __init__(self, edges):
        self.edges = np.asarray(edges, dtype=np.float64)
        self.n_bins = len(self.edges) + 1
        self._cast: dict = {}
        self.lut = None
        if len(self.edges) >= 8 and self.edges[-2] > self.edges[1]:
            self._build_table()

    def _build_table(self) -> None:
        e = self.edges
        lo, hi = e[1], e[-2]
        width = (hi - lo) / CELLS
        left = lo + np.arange(CELLS) * width
        first = np.searchsorted(e, left - _MARGIN * width, "left")
        n_edges = np.searchsorted(e, left + (1 + _MARGIN) * width, "right") - first
        base = first.astype(np.int32)
        single = np.where(n_edges == 1, e[np.minimum(first, len(e) - 1)], np.inf)
        base[n_edges > 1] = -1
        # cell 0: below e_1 (and NaN); cell CELLS + 1: at or above e_{B-2}; both take the exact path
        self.base = np.concatenate([[-1], base, [-1]]).astype(np.int32)
        self.single = np.concatenate([[np.inf], single, [np.inf]])
        self.lut = True
        self.lo, self.inv_width = lo, 1.0 / width

    def _typed(self, values: np.ndarray, dtype) -> np.ndarray:
        key = (id(values), dtype)
        if key not in self._cast:
            self._cast[key] = values.astype(dtype)
        return self._cast[key]

    def count(self, x: np.ndarray) -> tuple[np.ndarray, int]:
        """(counts per bin, number of NaN) for a 1-d float array."""
        x = np.asarray(x)
        if x.dtype not in (np.float32, np.float64):
            x = x.astype(np.float64)
        missing = int(np.count_nonzero(np.isnan(x)))
        edges = self._typed(self.edges, x.dtype)
        if self.lut is None or x.size < 4096:
            counts = np.bincount(np.searchsorted(edges, x, "left"), minlength=self.n_bins)
        else:
            counts = np.zeros(self.n_bins, dtype=np.int64)
            single = self._typed(self.single, x.dtype)
            lo, inv_width = x.dtype.type(self.lo), x.dtype.type(self.inv_width)
            t = np.empty(min(BLOCK, x.size), dtype=x.dtype)  # blocks that stay in cache, buffers reused
            for start in range(0, x.size, BLOCK):
                xb = x[start:start + BLOCK]
                tb = t[:xb.size]
                np.subtract(xb, lo, out=tb)
                tb *= inv_width
                tb += 1
                np.fmax(tb, 0, out=tb)  # NaN -> cell 0 (fmax ignores NaN): exact path, after the last edge
                np.fmin(tb, CELLS + 1, out=tb)
                cell = tb.astype(np.int32)
                bins = self.base[cell]
                bins += xb > single[cell]  # a cell holding one edge: one comparison
                exact = bins < 0
                counts += np.bincount(bins[~exact], minlength=self.n_bins)
                if exact.any():
                    counts += np.bincount(np.searchsorted(edges, xb[exact], "left"), minlength=self.n_bins)
        counts[-1] -= missing  # searchsorted puts NaN after every edge
        return counts.astype(np.int64), missing
