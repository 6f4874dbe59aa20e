"""trainyard: from raw data to a validated, deployed and monitored model.

    import trainyard
    result = trainyard.train("data.csv", target="churn", time_limit=60)
    result.leaderboard; result.metrics; result.model.predict(df)
    model = trainyard.load("churn@3")
    report = trainyard.evaluate(model, labelled_df, sensitive=["sex"]); report.to_html()
"""

__version__ = "0.1.0"
__all__ = ["train", "load", "predict", "audit", "evaluate", "TrainyardError"]


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
