"""Evaluation: metrics with intervals and baselines, overfitting, calibration, errors, explanations,
fairness, slices, and the model card. The entry point is `trainyard.evaluate` (core.evaluate)."""
