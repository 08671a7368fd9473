"""The benchmark suite (`make bench`): a vectorised dump generator, per-stage measurements, the DuckDB lower
bound, the Airflow runs, and docs/benchmarks.md. Entry point: `python -m event_pipeline.bench`."""
