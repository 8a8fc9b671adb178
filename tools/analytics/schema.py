"""The log's BigQuery schema files and views, generated from shared/platform/log_tables.py:

    python -m tools.analytics.schema --write     (after changing a column)
    python -m tools.analytics.schema --check     (what tests run: the files match the columns)

infra/analytics/<table>.schema.json is each raw table's schema (Terraform reads it); both the
BigQuery views and the local DuckDB views are infra/analytics/unique.sql.tftpl over the raw table:
one row per record_id, the first recorded (at-least-once delivery, deduplicated here).
"""

import argparse
import json
import pathlib
import sys

from shared.platform import log_tables

FOLDER = pathlib.Path(__file__).resolve().parents[2] / "infra" / "analytics"
UNIQUE_VIEW = FOLDER / "unique.sql.tftpl"


def raw_table(table: str) -> str:
    """The table the subscription (or the local feeder) writes into; `table` is its deduplicated view."""
    return f"{table.removesuffix('s')}_records"


def unique_view_sql(records: str) -> str:
    """The SELECT of a deduplicated view over the raw table named `records` (already quoted)."""
    return UNIQUE_VIEW.read_text().strip().replace("${records}", records)


def schema_path(table: str) -> pathlib.Path:
    return FOLDER / f"{table}.schema.json"


def schema_text(table: str) -> str:
    return json.dumps(log_tables.bigquery_schema(table), indent=2) + "\n"


def stale() -> list[str]:
    return [
        str(schema_path(t))
        for t in log_tables.TABLES
        if not schema_path(t).exists() or schema_path(t).read_text() != schema_text(t)
    ]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.analytics.schema", description=__doc__.split("\n")[0])
    parser.add_argument("--write", action="store_true", help="write the schema files")
    args = parser.parse_args(argv)
    if args.write:
        for table in log_tables.TABLES:
            schema_path(table).write_text(schema_text(table))
        return 0
    found = stale()
    for path in found:
        print(f"{path} does not match shared/platform/log_tables.py: run python -m tools.analytics.schema --write")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
