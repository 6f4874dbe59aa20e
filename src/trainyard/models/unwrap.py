"""See through trainyard's model wrappers to the gradient-boosting models inside.

A saved model's pipeline is either a plain `Pipeline(prep, booster)` or, from the AutoML search, a
`WeightedEnsemble` whose members are `Boosted` wrappers (optionally bagged: one copy per fold) behind a
shared "tree" preprocessor. Exporters, explainers and the serving fast path want the library models
themselves: `tree_parts(model)` gives the fitted preprocessor and every library model with its weight in
the final average, or None with the reason in `why_not(model)`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class TreeParts:
    """prep: fitted raw rows -> the boosters' feature frame. members: (weight, library, fitted sklearn-API model);
    the model's output is the weighted sum of the members' outputs (probabilities or values); weights sum to 1."""

    prep: object
    members: list[tuple[float, str, object]]

    @property
    def libraries(self) -> set[str]:
        return {lib for _, lib, _ in self.members}


def _library(estimator) -> str | None:
    module = type(estimator).__module__
    return next((lib for lib in ("lightgbm", "xgboost", "catboost") if module.startswith(lib)), None)


def _unpack(estimator, n_classes: int) -> tuple[list[tuple[float, str, object]] | None, str]:
    """[(weight within this member, library, model)] for a Boosted / library model / Bag of them, or (None, why)."""
    from trainyard.models.boosting import Boosted
    from trainyard.models.ensemble import Bag

    inner = list(estimator.estimators_) if isinstance(estimator, Bag) else [estimator]
    out = []
    for est in inner:
        if isinstance(est, Boosted):
            if n_classes and not np.array_equal(est.classes_, np.arange(n_classes)):
                return None, "a bagged fold saw only some of the classes (its outputs need remapping)"
            lib, model = est.library, est.model_
        else:
            lib, model = _library(est), est
            if lib is None:
                return None, f"it contains a {type(est).__name__} member, not a gradient-boosting model"
        out.append((1.0 / len(inner), lib, model))
    return out, ""


def _find(model) -> tuple[TreeParts | None, str]:
    from sklearn.pipeline import Pipeline

    from trainyard.models.ensemble import WeightedEnsemble

    pipe = model.pipeline
    n_classes = len(model.classes) if model.task.is_classification and model.classes is not None else 0
    if isinstance(pipe, Pipeline) and len(pipe.steps) == 2:
        parts, why = _unpack(pipe.steps[1][1], n_classes)
        return (TreeParts(pipe.steps[0][1], parts), "") if parts else (None, why)
    if not isinstance(pipe, WeightedEnsemble):
        return None, f"its estimator is a {type(pipe).__name__}"
    kinds = set(getattr(pipe, "kinds_", []))
    if kinds != {"tree"}:
        other = ", ".join(sorted(kinds - {"tree"}))
        return None, f"it has members on {other} preprocessing, which are not gradient-boosting models"
    members = []
    for member, weight in zip(pipe.members_, pipe.weights):
        parts, why = _unpack(member, n_classes)
        if parts is None:
            return None, why
        members += [(weight * w, lib, m) for w, lib, m in parts]
    return TreeParts(pipe.preps_["tree"], members), ""


def tree_parts(model) -> TreeParts | None:
    """The preprocessor and weighted library models of a gradient-boosting model or ensemble, or None."""
    try:
        return _find(model)[0]
    except ImportError:
        return None


def why_not(model) -> str:
    """Why `tree_parts(model)` is None, in words for an error message."""
    try:
        return _find(model)[1]
    except ImportError as exc:
        return f"a library is missing ({exc.name})"
