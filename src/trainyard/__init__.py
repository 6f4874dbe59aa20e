"""trainyard: from raw data to a validated, deployed and monitored model.

    import trainyard
    result = trainyard.train("data.csv", target="churn", time_limit=60)
    result.leaderboard; result.metrics; result.model.predict(df)
    model = trainyard.load("churn@3")
    report = trainyard.evaluate(model, labelled_df, sensitive=["sex"]); report.to_html()
"""

import importlib
import importlib.abc
import importlib.util
import sys

__version__ = "0.1.0"
__all__ = ["train", "load", "predict", "audit", "evaluate", "TrainyardError"]

# Modules that moved. Pickled models saved by earlier versions name the classes inside them by their old module
# paths (a fitted WeightedEnsemble was `trainyard.training.ensemble.WeightedEnsemble`); this finder answers an old
# name with the module at its new place, so those artifacts still load (after their hashes are checked).
MOVED_MODULES = {
    "trainyard.training.ensemble": "trainyard.models.ensemble",
    "trainyard.training.loop": "trainyard.engine.loop",
    "trainyard.training.batches": "trainyard.engine.batches",
    "trainyard.training.runtime": "trainyard.engine.runtime",
    "trainyard.training.schedule": "trainyard.engine.schedule",
    "trainyard.training.checkpoint": "trainyard.engine.checkpoint",
    "trainyard.training.search": "trainyard.automl.search",
    "trainyard.training.budget": "trainyard.automl.budget",
    "trainyard.evaluation.metrics": "trainyard.metrics",
}


class _MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path=None, target=None):
        if fullname in MOVED_MODULES or fullname == "trainyard.training":
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        if spec.name == "trainyard.training":  # the old package: an empty namespace for the moved modules
            return None
        return importlib.import_module(MOVED_MODULES[spec.name])

    def exec_module(self, module):
        if module.__name__ == "trainyard.training":
            module.__path__ = []


sys.meta_path.append(_MovedModuleFinder())


def __getattr__(name):
    # Lazy: `import trainyard` (and `trainyard --help`) must not pay for pandas and scikit-learn.
    if name == "evaluate":
        from trainyard.evaluation.core import evaluate

        return evaluate
    if name in ("train", "load", "predict", "load_with_meta"):
        from trainyard import api

        return getattr(api, name)
    if name == "audit":
        from trainyard.data.audit import audit

        return audit
    if name == "TrainyardError":
        from trainyard.errors import TrainyardError

        return TrainyardError
    raise AttributeError(f"module 'trainyard' has no attribute {name!r}")
