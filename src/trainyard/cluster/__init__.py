"""Ray, when a run is given --cluster: where trials and data-parallel workers run (docs/distributed.md)."""
