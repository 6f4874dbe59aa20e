"""Monitoring: reference profiles, data and prediction drift, performance with late labels, retraining.

The reference profile (`profile.py`) is computed from the training rows and stored in the model's artifact;
`drift.py` compares a window of new rows with it, `domain.py` adds a multivariate check, `window.py` reads
the prediction log, `performance.py` joins late labels, `report.py` renders the result and `retrain.py`
trains and (optionally) promotes a challenger.
"""
