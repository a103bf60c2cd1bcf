"""Benchmarks for dbt-cloud-restart: `python -m benchmarks` runs them all and prints tables (not timed tests)."""
