"""Metrics, held-out evaluation and reports."""
