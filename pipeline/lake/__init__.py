"""The data-lake archive of job events: Parquet files per topic, hour and partition
(archiver), DuckDB queries over them (query) and age-based deletion (retention)."""
