"""Model search for tables, and the deep-learning loop (loop, checkpoint, batches, schedule, runtime, tracking)."""
