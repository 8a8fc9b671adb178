"""The decision and outcome log's two tables, defined once: BigQuery's schema files
(infra/analytics/*.schema.json, written by `python -m tools.analytics.schema --write`) and the local
DuckDB tables are generated from these columns, and tests check the records the functions publish
against them (docs/analytics.md).

A record is one JSON object; every column not listed as REQUIRED may be absent (null). Times are
integers, microseconds since the epoch (what a Pub/Sub BigQuery subscription writes into a
TIMESTAMP column). Lists never hold nulls (BigQuery arrays cannot), so a CPA request's payouts,
where some may be unknown, are JSON text.
"""

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


def _common(what: str) -> tuple[Column, ...]:
    return (
        Column("record_id", "STRING", f"Unique per {what}: tenant/product/id; views keep one row per id", "REQUIRED"),
        Column("tenant", "STRING", "The client (tenant) the request was made as", "REQUIRED"),
        Column("product", "STRING", "cpa (/sample, /feedback) or customer (/predict, /rewards)", "REQUIRED"),
        Column("time", "TIMESTAMP", f"When the service recorded the {what}", "REQUIRED"),
        Column("decision_id", "STRING", "The click id (cpa) or the episode id (customer)", "REQUIRED"),
    )


_INCLUSION = (
    Column("offer", "STRING", "An eligible offer", "REQUIRED"),
    Column("probability", "FLOAT64", "Its probability of being in the slate", "REQUIRED"),
)

COLUMNS: dict[str, tuple[Column, ...]] = {
    DECISIONS: _common("decision")
    + (
        Column("policy", "STRING", "The sampler (cpa) or agent (customer) that decided"),
        Column("served_by", "STRING", "What served it: the policy, config:<...>, holdout:<baseline>"),
        Column("holdout", "BOOL", "Served by the baseline as part of the holdout, excluded from learning", "REQUIRED"),
        Column("holdout_share", "FLOAT64", "The tenant's configured holdout share when the decision was made"),
        Column(
            "candidates", "STRING", "The offers the decision chose among (cpa: the request's offer ids)", "REPEATED"
        ),
        Column("offer_id", "STRING", "cpa: the offer chosen"),
        Column("probability", "FLOAT64", "cpa: the probability the policy had of choosing offer_id"),
        Column("payouts", "STRING", "cpa: the request's payouts aligned with candidates, JSON (null: unknown)"),
        Column("floor", "FLOAT64", "cpa: the request's exploration floor"),
        Column("slate", "STRING", "customer: the offers served, best first", "REPEATED"),
        Column("inclusion", "RECORD", "customer: each eligible offer's P(in the slate)", "REPEATED", _INCLUSION),
        Column("segment", "STRING", "customer: age band|region|gender"),
        Column("agent_version", "STRING", "customer: the agent's version"),
        Column("shadow_policy", "STRING", "The shadow sampler or agent logged beside the decision"),
        Column("shadow_offer_id", "STRING", "cpa: the offer the shadow would have chosen"),
        Column("shadow_probability", "FLOAT64", "cpa: the shadow's probability of choosing it"),
        Column("shadow_slate", "STRING", "customer: the shadow's slate", "REPEATED"),
        Column("shadow_inclusion", "RECORD", "customer: the shadow's inclusion probabilities", "REPEATED", _INCLUSION),
        Column("geo", "STRING", "cpa: the click's country or region, when the request gave it"),
        Column("device", "STRING", "cpa: the click's device class, when given"),
        Column("os", "STRING", "cpa: the click's operating system, when given"),
        Column("source", "STRING", "cpa: the click's traffic source, when given"),
    ),
    OUTCOMES: _common("outcome")
    + (
        Column("event_id", "STRING", "cpa: the reward event (_ when the feedback named none)"),
        Column("reward", "FLOAT64", "cpa: the event's amount, cents; customer: 1 accepted, 0 not", "REQUIRED"),
        Column("total", "FLOAT64", "cpa: the click's reward after the event, cents"),
        Column("accepted_offer", "STRING", "customer: the offer accepted, when named"),
        Column("late", "BOOL", "Arrived after the decision's reward window: a correction", "REQUIRED"),
        Column("holdout", "BOOL", "The decision was in the holdout", "REQUIRED"),
    ),
}

CLUSTERING = ("tenant", "product")  # BigQuery's clustering; partitioned by DAY on `time`


def names(table: str) -> list[str]:
    return [column.name for column in COLUMNS[table]]


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
