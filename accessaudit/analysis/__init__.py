"""Pure analysis stages: polars tables in, polars tables out; no I/O."""
