"""Loading, schema inference, splitting and preparation of tables."""
