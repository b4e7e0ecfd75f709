"""Where data lives: the analytical warehouse (Parquet + manifests, DuckDB) and the
operational database (SQLAlchemy). No module outside this package opens a connection."""
