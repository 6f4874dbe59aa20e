"""Imports the built-in model families so that they register themselves.

One module per group: linear (logistic/ridge, elastic net), neighbors (k-NN),
trees (decision tree, random forest, extra trees), boosting (LightGBM, XGBoost,
CatBoost). The PyTorch MLP registers from its own module; add it to
`BUILTIN_MODULES` (a missing optional module is skipped).
"""

from __future__ import annotations

import importlib

BUILTIN_MODULES = ("linear", "neighbors", "trees", "boosting", "neural")

for _name in BUILTIN_MODULES:
    try:
        importlib.import_module(f"trainyard.models.{_name}")
    except ModuleNotFoundError as _exc:
        if _exc.name != f"trainyard.models.{_name}":
            raise

from trainyard.models.trees import CodedTrees, NumericForest  # noqa: E402,F401  (old pickles' import path)
