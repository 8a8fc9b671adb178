"""The decision and outcome log's two tables, defined once: their columns are data, in
log_tables.json beside this module. BigQuery's schema files (infra/analytics/*.schema.json, written
by `python -m tools.analytics.schema --write`) and the local DuckDB tables are generated from these
columns, and tests check the records the functions publish against them (docs/analytics.md).

A record is one JSON object; every column not listed as REQUIRED may be absent (null). Times are
integers, microseconds since the epoch (what a Pub/Sub BigQuery subscription writes into a
TIMESTAMP column). Lists never hold nulls (BigQuery arrays cannot), so a CPA request's payouts,
where some may be unknown, are JSON text.
"""

import json
import pathlib
from dataclasses import dataclass

DECISIONS = "decisions"
OUTCOMES = "outcomes"
TABLES = (DECISIONS, OUTCOMES)


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # BigQuery's: STRING, INT64, FLOAT64, BOOL, TIMESTAMP, RECORD
    description: str
    mode: str = "NULLABLE"  # or REQUIRED, REPEATED
    fields: tuple["Column", ...] = ()  # a RECORD's


def _columns(entries: list[dict], records: dict, what: str) -> tuple[Column, ...]:
    return tuple(
        Column(
            entry["name"],
            entry["type"],
            entry["description"].replace("{what}", what),
            entry.get("mode", "NULLABLE"),
            _columns(records[entry["fields"]], records, what) if "fields" in entry else (),
        )
        for entry in entries
    )


def _load() -> dict[str, tuple[Column, ...]]:
    """The columns of shared/platform/log_tables.json (data, shipped with the functions' code)."""
    spec = json.loads(pathlib.Path(__file__).with_suffix(".json").read_text())
    what = {DECISIONS: "decision", OUTCOMES: "outcome"}
    return {table: _columns(spec["common"] + spec["tables"][table], spec["records"], what[table]) for table in TABLES}


COLUMNS: dict[str, tuple[Column, ...]] = _load()

CLUSTERING = ("tenant", "product")  # BigQuery's clustering; partitioned by DAY on `time`


def bigquery_schema(table: str) -> list[dict]:
    """The table's schema as BigQuery's JSON (bq, Terraform's google_bigquery_table.schema)."""

    def field(column: Column) -> dict:
        found = {"name": column.name, "type": column.type, "mode": column.mode, "description": column.description}
        if column.fields:
            found["fields"] = [field(inner) for inner in column.fields]
        return found

    return [field(column) for column in COLUMNS[table]]


_DUCKDB_TYPES = {"STRING": "VARCHAR", "INT64": "BIGINT", "FLOAT64": "DOUBLE", "BOOL": "BOOLEAN"}


def duckdb_type(column: Column) -> str:
    if column.type == "RECORD":
        inner = ", ".join(f"{field.name} {duckdb_type(field)}" for field in column.fields)
        kind = f"STRUCT({inner})"
    elif column.type == "TIMESTAMP":
        kind = "TIMESTAMP"  # UTC, as BigQuery's TIMESTAMP (read back naive, taken as UTC)
    else:
        kind = _DUCKDB_TYPES[column.type]
    return f"{kind}[]" if column.mode == "REPEATED" else kind


def duckdb_columns(table: str) -> str:
    """The table's columns as DuckDB DDL (the local log has the same columns and meaning)."""
    return ", ".join(
        f"{column.name} {duckdb_type(column)}" + (" NOT NULL" if column.mode == "REQUIRED" else "")
        for column in COLUMNS[table]
    )


def problems(table: str, record: dict) -> list[str]:
    """What in `record` does not fit the table (an unknown column, a required one missing, a list
    where a value belongs): the check tests apply to every record the functions publish."""
    columns = {column.name: column for column in COLUMNS[table]}
    found = [f"{name}: not a column of {table}" for name in record if name not in columns]
    for column in columns.values():
        value = record.get(column.name)
        if value is None:
            if column.mode == "REQUIRED":
                found.append(f"{column.name}: required")
            continue
        if (column.mode == "REPEATED") != isinstance(value, list):
            found.append(f"{column.name}: {'a list' if column.mode == 'REPEATED' else 'one value'} expected")
        elif column.mode == "REPEATED" and any(item is None for item in value):
            found.append(f"{column.name}: a list may not hold null")
    return found
