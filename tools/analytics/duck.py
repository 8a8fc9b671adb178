"""The local decision log: one DuckDB file with the same tables as BigQuery's dataset (the raw
`<table>_records` tables and the deduplicated views), written by `make run`'s feeder
(devstack/feeder.py) and read by the tools (tools/analytics/warehouse.py).

DuckDB lets one process write a file, or several read it, never both at once: the feeder opens the
file for each batch and closes it after the commit; readers open it read-only, read what they need
and close it. Either side waits while the other holds it (`connect`).
"""

import json
import os
import pathlib
import tempfile
import time

import duckdb

from shared.platform import log_tables
from tools.analytics.schema import raw_table, unique_view_sql

DEFAULT_PATH = pathlib.Path("local-results/decision-log.duckdb")
LOCK_PATIENCE = 60.0  # seconds to wait for the other side's lock


def connect(path: pathlib.Path, read_only: bool = False, patience: float = LOCK_PATIENCE) -> duckdb.DuckDBPyConnection:
    """A connection to the file, waiting while another process holds its lock."""
    deadline = time.monotonic() + patience
    while True:
        try:
            connection = duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as error:
            if "lock" not in str(error).lower() or time.monotonic() > deadline:
                raise
            time.sleep(0.1)
            continue
        return connection


def create(connection: duckdb.DuckDBPyConnection) -> None:
    """The raw tables and their views, when missing."""
    for table in log_tables.TABLES:
        records = raw_table(table)
        connection.execute(f"CREATE TABLE IF NOT EXISTS {records} ({log_tables.duckdb_columns(table)})")
        connection.execute(f"CREATE OR REPLACE VIEW {table} AS {unique_view_sql(records)}")


def insert(connection: duckdb.DuckDBPyConnection, table: str, records: list[dict]) -> None:
    """Append records to the table's raw table (duplicates stay there, as in BigQuery; the view
    keeps one of each). A column the table does not have is dropped, as the subscription's
    drop_unknown_fields does. Loaded as JSON lines through DuckDB's reader: binding each value as a
    parameter is a hundred times slower."""
    if not records:
        return
    columns = log_tables.COLUMNS[table]
    types = ", ".join(
        f"'{column.name}': '{'BIGINT' if column.type == 'TIMESTAMP' else log_tables.duckdb_type(column)}'"
        for column in columns
    )
    chosen = ", ".join(
        f"make_timestamp({column.name})" if column.type == "TIMESTAMP" else column.name for column in columns
    )
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as lines:
        for record in records:
            lines.write(json.dumps(record) + "\n")
    try:
        connection.execute(
            f"INSERT INTO {raw_table(table)} SELECT {chosen} FROM read_json(?, format = 'newline_delimited', "
            f"columns = {{{types}}})",
            [lines.name],
        )
    finally:
        os.unlink(lines.name)
