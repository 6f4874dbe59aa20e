"""The artifact format and the store of runs, trials, metrics and model versions."""
