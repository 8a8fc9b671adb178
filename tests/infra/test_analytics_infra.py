"""The decision log's Terraform (infra/analytics.tf), read offline: the subscriptions write each topic
into its own table, the tables have the schema the code's records fit, are partitioned by day and
clustered by tenant, the IAM grants only what each identity needs, and the SRM alert is there."""

import json
import re
import shutil

import pytest

from shared.platform import log_tables
from tests.infra.terraform import HCL, INFRA, RESOURCES, evaluate, resources
from tools.analytics import schema
from tools.analytics.warehouse import DEFAULT_DATASET

TABLES = HCL["locals"]["log_tables"]
needs_terraform = pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform is not installed")


def test_each_topic_has_a_subscription_writing_it_into_its_own_table_with_its_schema():
    assert {table: schema.raw_table(table) for table in log_tables.TABLES} == TABLES
    subscription = resources("google_pubsub_subscription")["to_bigquery"]
    assert subscription["for_each"] == "${local.log_tables}"
    assert subscription["topic"] == "${google_pubsub_topic.log[each.key].id}"  # topic `table` -> raw table of `table`
    config = subscription["bigquery_config"][0]
    assert config["table"].endswith(".${google_bigquery_dataset.log.dataset_id}.${each.value}")
    assert config["use_table_schema"] is True and config["drop_unknown_fields"] is True
    assert subscription["dead_letter_policy"][0]["dead_letter_topic"] == "${google_pubsub_topic.dead_letters.id}"
    dead = resources("google_pubsub_subscription")["dead_letters_to_bigquery"]
    assert dead["topic"] == "${google_pubsub_topic.dead_letters.id}"
    assert dead["bigquery_config"][0]["write_metadata"] is True
    assert resources("google_pubsub_topic")["log"]["name"] == "${var.name_prefix}-${each.key}"


def test_the_tables_hold_the_codes_columns_partitioned_by_day_and_clustered_by_tenant():
    assert schema.stale() == []  # infra/analytics/*.schema.json is shared/platform/log_tables.py's
    table = resources("google_bigquery_table")["records"]
    assert table["for_each"] == "${local.log_tables}" and table["table_id"] == "${each.value}"
    assert table["schema"] == '${file("${path.module}/analytics/${each.key}.schema.json")}'
    for name in log_tables.TABLES:
        written = json.loads((INFRA / "analytics" / f"{name}.schema.json").read_text())
        assert {"name": "time", "type": "TIMESTAMP", "mode": "REQUIRED"}.items() <= written[3].items()
        assert next(column for column in written if column["name"] == "tenant")["mode"] == "REQUIRED"
    assert table["time_partitioning"] == [{"type": "DAY", "field": "time"}]
    assert table["clustering"] == ["tenant", "product"] and list(log_tables.CLUSTERING) == ["tenant", "product"]
    view = resources("google_bigquery_table")["unique"]
    assert "unique.sql.tftpl" in view["view"][0]["query"] and view["view"][0]["use_legacy_sql"] is False
    assert view["table_id"] == "${each.key}"  # the views are named as the tables the tools read


def test_context_fields_of_clicks_are_ready_and_nullable():
    columns = {column.name: column for column in log_tables.COLUMNS["decisions"]}
    for name in ("geo", "device", "os", "source"):
        assert columns[name].mode == "NULLABLE"


def test_iam_grants_only_what_each_identity_needs():
    publish = resources("google_pubsub_topic_iam_member")
    assert publish["functions_publish"]["role"] == "roles/pubsub.publisher"
    assert publish["functions_publish"]["member"] == '${google_service_account.account["http"].member}'
    assert publish["functions_publish"]["topic"] == "${google_pubsub_topic.log[each.key].name}"
    assert publish["pubsub_dead_letters"]["member"] == "${local.pubsub_agent}"
    writes = resources("google_bigquery_table_iam_member")["pubsub_writes"]
    assert (writes["role"], writes["member"]) == ("roles/bigquery.dataEditor", "${local.pubsub_agent}")
    # the dataset itself: read by the listed readers only, never written through a dataset grant
    dataset = resources("google_bigquery_dataset_iam_member")
    assert list(dataset) == ["readers"]
    assert (dataset["readers"]["role"], dataset["readers"]["for_each"]) == (
        "roles/bigquery.dataViewer",
        "${toset(var.analytics_readers)}",
    )
    assert not resources("google_bigquery_dataset_iam_binding") and not resources("google_bigquery_dataset_iam_policy")
    subscriber = resources("google_pubsub_subscription_iam_member")["pubsub_dead_letters"]
    assert (subscriber["role"], subscriber["member"]) == ("roles/pubsub.subscriber", "${local.pubsub_agent}")


def test_the_srm_alert_is_present_and_reads_the_split_the_functions_log():
    alert = resources("google_monitoring_alert_policy")["holdout_srm"]
    condition = alert["conditions"][0]["condition_prometheus_query_language"][0]
    assert condition["query"] == "${local.srm_query}"
    metric = HCL["locals"]["logged_metrics"]
    split = re.sub(r"\s+", " ", json.dumps(metric))
    assert "holdout_split" in split and "jsonPayload.holdout_share" in split and "jsonPayload.holdout" in split
    # the fields it reads are ones the code logs: tests/test_infra.py checks every metric's fields


@needs_terraform
def test_the_srm_query_and_the_functions_environment_as_terraform_computes_them():
    found = evaluate({"project_id": "p"}, ["srm_query", "functions", "log_dataset", "project_grants"])
    # no project-wide BigQuery or Pub/Sub role for any runtime: the grants above are per topic and table
    grants = found["project_grants"]
    assert grants and not [g for g in grants if "bigquery" in g["role"] or g["role"].startswith("roles/pubsub")]
    query = found["srm_query"]
    assert "logging_googleapis_com:user_offer_bandits_holdout_split_count" in query
    assert "logging_googleapis_com:user_offer_bandits_holdout_split_sum" in query
    assert query.count('holdout="true"') == 2 and "> 10.83" in query and "> 5" in query
    env = found["functions"]["sample"]["env"]
    assert (env["DECISION_LOG"], env["DECISION_LOG_TOPIC_PREFIX"], env["HOLDOUT_SHARE"]) == (
        "pubsub",
        "offer-bandits-",
        "0.02",
    )
    assert found["log_dataset"] == DEFAULT_DATASET  # where the tools look by default
    assert RESOURCES[("google_project_service", "enabled")]
