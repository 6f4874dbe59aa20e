"""Model families (registry + one module per family) and the fitted-model wrapper."""
