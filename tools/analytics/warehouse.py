"""Where the decision log is read: the local DuckDB file or the deployed BigQuery dataset, behind one
`rows(sql, **params)` so the analysis (tools/analytics/queries.py) is written once.

The SQL names the log's views `{decisions}` and `{outcomes}` and its parameters `@name` (BigQuery's
spelling; DuckDB's `$name` is substituted). Times go in and come out as timezone-aware UTC datetimes
(DuckDB holds them as naive UTC). Which one (first match): `--log FILE` or DECISION_LOG_FILE; the
`--project` given (its dataset `--dataset`); the running `make run`'s file (its state file);
GOOGLE_CLOUD_PROJECT.
"""

import datetime
import os
import pathlib
import re

from shared.platform import log_tables
from tools import target
from tools.analytics import duck

DEFAULT_DATASET = "offer_bandits_log"  # infra/analytics.tf: name_prefix with _ for -, then _log
_PARAMETER = re.compile(r"@([a-z_]+)")


def _utc(value):
    if isinstance(value, datetime.datetime):
        return value.replace(tzinfo=datetime.UTC) if value.tzinfo is None else value.astimezone(datetime.UTC)
    return value


class DuckDBWarehouse:
    dialect = "duckdb"

    def __init__(self, path: pathlib.Path):
        self.path = pathlib.Path(path)
        self.description = f"the local decision log {self.path}"

    def sql(self, template: str) -> str:
        return _PARAMETER.sub(r"$\1", template.format(**{table: table for table in log_tables.TABLES}))

    def rows(self, template: str, **params) -> list[dict]:
        if not self.path.exists():
            raise SystemExit(f"{self.path} does not exist: is `make run` (its feeder) running?")
        values = {
            name: value.astimezone(datetime.UTC).replace(tzinfo=None) if isinstance(value, datetime.datetime) else value
            for name, value in params.items()
        }
        connection = duck.connect(self.path, read_only=True)
        try:
            cursor = connection.execute(self.sql(template), values)
            names = [column[0] for column in cursor.description]
            return [{name: _utc(value) for name, value in zip(names, row, strict=True)} for row in cursor.fetchall()]
        finally:
            connection.close()


class BigQueryWarehouse:
    dialect = "bigquery"

    def __init__(self, project: str, dataset: str = DEFAULT_DATASET):
        self.project, self.dataset = project, dataset
        self.description = f"BigQuery dataset {project}.{dataset}"

    def sql(self, template: str) -> str:
        return template.format(**{table: f"`{self.project}.{self.dataset}.{table}`" for table in log_tables.TABLES})

    def rows(self, template: str, **params) -> list[dict]:
        from google.cloud import bigquery

        kinds = {str: "STRING", bool: "BOOL", int: "INT64", float: "FLOAT64", datetime.datetime: "TIMESTAMP"}
        config = bigquery.QueryJobConfig(
            query_parameters=[bigquery.ScalarQueryParameter(n, kinds[type(v)], v) for n, v in params.items()]
        )
        job = bigquery.Client(project=self.project).query(self.sql(template), job_config=config)
        return [{name: _utc(value) for name, value in row.items()} for row in job.result()]


def choose(log: pathlib.Path | None, project: str | None, dataset: str = DEFAULT_DATASET):
    """The warehouse to read (see the module's doc)."""
    log = log or (pathlib.Path(os.environ["DECISION_LOG_FILE"]) if os.environ.get("DECISION_LOG_FILE") else None)
    if log is not None:
        return DuckDBWarehouse(log)
    if project:
        return BigQueryWarehouse(project, dataset)
    state = target.running_stack()
    if state is not None and state.get("decision_log"):
        return DuckDBWarehouse(pathlib.Path(state["decision_log"]))
    if os.environ.get("GOOGLE_CLOUD_PROJECT"):
        return BigQueryWarehouse(os.environ["GOOGLE_CLOUD_PROJECT"], dataset)
    raise SystemExit("No decision log to read: start `make run`, or pass --log FILE or --project ID.")
