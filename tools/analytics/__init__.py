"""The decision and outcome log, read: DuckDB locally (the file `make run`'s feeder writes), BigQuery
deployed (the dataset infra/analytics.tf creates), through the same SQL (docs/analytics.md)."""
