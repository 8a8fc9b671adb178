"""The analysis SQL (tools/analytics/queries.py) and the log's views (infra/analytics/unique.sql.tftpl)
are valid BigQuery and mean the same in BigQuery and DuckDB, as sqlglot reads them: nothing reaches
BigQuery from here, so this is the check that the code the deployed tools send would compile. DuckDB
runs the same text in the stack tests (tests/stack/test_decision_log.py)."""

import pytest
import sqlglot
from sqlglot import exp

from tools.analytics import queries
from tools.analytics.schema import raw_table, unique_view_sql
from tools.analytics.warehouse import BigQueryWarehouse, DuckDBWarehouse

# What the neutral subset may call: each is a function of both engines with the same meaning.
ALLOWED = {exp.Sum, exp.Count, exp.Max, exp.Ln, exp.Coalesce, exp.Cast, exp.RowNumber}
STATEMENTS = {name: sql for name, sql in queries.ALL.items()} | {
    f"view {table}": f"SELECT * FROM ({unique_view_sql(raw_table(table))})" for table in ("decisions", "outcomes")
}


def _plain(template: str) -> str:
    """The statement with the views' plain names and BigQuery's @parameters."""
    return template.format(decisions="decisions", outcomes="outcomes") if "{" in template else template


@pytest.mark.parametrize("name", sorted(STATEMENTS))
def test_the_statement_is_valid_bigquery_with_the_deployed_names(name):
    sql = BigQueryWarehouse("my-project", "offer_bandits_log").sql(STATEMENTS[name])
    parsed = sqlglot.parse_one(sql, read="bigquery", error_level=sqlglot.ErrorLevel.RAISE)
    tables = {".".join(part for part in (t.catalog, t.db, t.name) if part) for t in parsed.find_all(exp.Table)}
    deployed = {"my-project.offer_bandits_log.decisions", "my-project.offer_bandits_log.outcomes"}
    assert tables <= deployed | {"decision_records", "outcome_records"}, tables
    # written back by sqlglot's BigQuery generator, it reads again as the same statement
    written = parsed.sql(dialect="bigquery")
    assert sqlglot.parse_one(written, read="bigquery").sql(dialect="bigquery") == written


@pytest.mark.parametrize("name", sorted(STATEMENTS))
def test_the_statement_means_the_same_in_duckdb_and_bigquery(name):
    template = _plain(STATEMENTS[name])
    as_bigquery = sqlglot.parse_one(template, read="bigquery")
    as_duckdb = sqlglot.parse_one(DuckDBWarehouse("unused").sql(STATEMENTS[name]), read="duckdb")
    # the same tree once parameters are named alike ($name in DuckDB, @name in BigQuery)
    for tree in (as_bigquery, as_duckdb):
        for parameter in list(tree.find_all(exp.Parameter, exp.Placeholder)):
            parameter.replace(exp.column(f"param_{parameter.name}"))
    assert as_bigquery.sql(dialect="duckdb") == as_duckdb.sql(dialect="duckdb")
    assert as_bigquery.sql(dialect="bigquery") == as_duckdb.sql(dialect="bigquery")


@pytest.mark.parametrize("name", sorted(STATEMENTS))
def test_only_functions_both_engines_have_are_called(name):
    parsed = sqlglot.parse_one(_plain(STATEMENTS[name]), read="bigquery")
    called = {type(node) for node in parsed.find_all(exp.Func)} - {exp.Case, exp.If, exp.And, exp.Or}
    assert not any(isinstance(node, exp.Anonymous) for node in parsed.find_all(exp.Anonymous)), "an unknown function"
    assert called <= ALLOWED, called - ALLOWED
