"""Model search for tables, and (later) the deep-learning loop."""
