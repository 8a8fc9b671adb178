"""Batch CSV parsing, client rules, CSV-safe output and batch scoring: pure, no emulators."""

import csv
import io
import json

import numpy as np
import pytest

from shared.batch.csv_io import Customer, FileError, Rejected, RowParser, csv_bytes, read_layout, records, safe_cell
from shared.batch.job import client_and_stem, output_paths
from shared.batch.rules import RulesError, load_rules, parse_rules
from shared.customer import agents, segments

COMPANY_B = load_rules("company_b")
OFFERS = ",".join(f"OFFER_{n}" for n in range(1, 11))


def text_of(data: bytes):
    """The input as score_upload decodes it."""
    return io.TextIOWrapper(io.BytesIO(data), encoding="utf-8-sig", errors="surrogateescape", newline="")


def parse_all(data: bytes, rules=COMPANY_B):
    lines = records(text_of(data))
    parser = RowParser(read_layout(next(lines)[1]), rules)
    return [parser.parse(line, cells) for line, cells in lines]


def test_bom_crlf_shuffled_and_case_insensitive_headers_blank_lines():
    data = (
        "\ufeff OFFER_2 ,Region,Age , customer_ID,GENDER,offer_1\r\n\r\n"
        "1, europa ,30,a, f ,0\r\n   \r\n,,,,,\r\n"
        "true,ASIA,66.5,b,Male,1\r\n"
    ).encode()
    rows = parse_all(data)
    assert [(row.line, row.customer_id, row.region, row.gender, row.age, row.eligible) for row in rows] == [
        (3, "a", "Europa", "F", 30.0, ["OFFER_2"]),
        (6, "b", "Asia", "M", 66.5, ["OFFER_2"]),  # over 65: OFFER_1 is not allowed
    ]


def test_lf_and_no_bom_parse_the_same():
    with_bom = parse_all(
        f"\ufeffcustomer_id,age,gender,region,{OFFERS}\r\nx,40,M,Asia,{','.join(['1'] * 10)}\r\n".encode()
    )
    plain = parse_all(f"customer_id,age,gender,region,{OFFERS}\nx,40,M,Asia,{','.join(['1'] * 10)}\n".encode())
    assert with_bom == plain and isinstance(plain[0], Customer) and len(plain[0].eligible) == 10


@pytest.mark.parametrize(
    "row, reason",
    [
        ("x,,M,Asia,1,1", "age: missing"),
        ("x,abc,M,Asia,1,1", "age 'abc': must be a number"),
        ("x,-3,M,Asia,1,1", "age '-3': must be between 0 and 130"),
        ("x,40,Q,Asia,1,1", "gender 'Q'"),
        ("x,40,M,Mars,1,1", "region 'Mars'"),
        ("x,40,M,Asia,1,maybe", "OFFER_2 'maybe': must be true or false"),
        ("x,40,M,Asia,0,0", "no eligible offer: every offer flag is false"),
        ("x,70,M,Europa,0,0", "no eligible offer"),
        (",40,M,Asia,1,1", "customer_id: missing"),
        ("x,40,M,Asia,1", "has 5 fields, the header has 6"),
        ("x,40,M,Asia,1,1,surplus", "has 7 fields, the header has 6"),
    ],
)
def test_bad_rows_are_rejected_with_a_reason(row, reason):
    [rejected] = parse_all(f"customer_id,age,gender,region,OFFER_1,OFFER_2\n{row}\n".encode())
    assert isinstance(rejected, Rejected) and reason in rejected.reason and rejected.line == 2


def test_rules_leave_only_allowed_offers():
    header = f"customer_id,age,gender,region,{OFFERS}\n"
    rows = parse_all(
        (
            header
            + "".join(
                f"{i},{age},F,{region},{','.join(['True'] * 10)}\n"
                for i, (age, region) in enumerate([(30, "Europa"), (66, "Asia"), (65, "Asia"), (80, "europa")])
            )
        ).encode()
    )
    eligible = [set(row.eligible) for row in rows]
    everything = set(segments.OFFERS)
    assert eligible == [
        everything - {"OFFER_4", "OFFER_5", "OFFER_6"},
        everything - {"OFFER_1", "OFFER_3", "OFFER_4"},
        everything,
        everything - {"OFFER_1", "OFFER_3", "OFFER_4", "OFFER_5", "OFFER_6"},
    ]


def test_invalid_utf8_rejects_its_row_only():
    rows = parse_all(b"customer_id,age,gender,region,OFFER_1\nbad\xff,40,M,Asia,1\ngood,40,M,Asia,1\n")
    assert isinstance(rows[0], Rejected) and rows[0].reason == "not valid UTF-8"
    assert isinstance(rows[1], Customer)
    assert "\ufffd" in csv_bytes([[rows[0].customer_id]]).decode()


def test_a_runaway_quoted_field_rejects_its_record_and_reading_goes_on():
    field = (b"x" * 1000 + b"\n") * 70  # short lines, an unclosed quoted field that runs past 64 kB
    data = b'customer_id,age,gender,region,OFFER_1\n"' + field + b"ok,40,M,Asia,1\n"
    limit = csv.field_size_limit()
    rows = parse_all(data)
    assert isinstance(rows[0], Rejected) and "malformed" in rows[0].reason and "65536" in rows[0].reason
    assert rows[-1].customer_id == "ok"
    assert csv.field_size_limit() == limit  # the csv module's global limit is left as it was


def test_an_over_long_line_rejects_its_row_with_that_reason_and_reading_goes_on():
    data = b"customer_id,age,gender,region,OFFER_1\n" + b"y" * 70000 + b",40,M,Asia,1\r\nok,40,M,Asia,1\n"
    rows = parse_all(data)
    assert [(row.line, row.reason) for row in rows if isinstance(row, Rejected)] == [
        (2, "line 2 is longer than 65536 characters")
    ]
    assert [row.customer_id for row in rows if isinstance(row, Customer)] == ["ok"]


@pytest.mark.parametrize(
    "data, message",
    [
        (b"z" * 1_000_000, "no header row: line 1 is longer than 65536 characters"),
        (b"1,30,F,Asia,True\n2,40,M,Asia,False\n", "no header row: the first line must name the columns"),
    ],
)
def test_a_file_without_a_header_row_says_so(data, message):
    with pytest.raises(FileError, match=message):
        read_layout(next(records(text_of(data)))[1])


@pytest.mark.parametrize(
    "header, message",
    [
        ("customer_id,age,gender", "missing columns: region"),
        ("customer_id,age,gender,region", "no offer columns"),
        ("customer_id,age,AGE,gender,region,OFFER_1", "duplicate columns: age"),
    ],
)
def test_unusable_headers_fail_the_file(header, message):
    with pytest.raises(FileError, match=message):
        read_layout(header.split(","))


@pytest.mark.parametrize(
    "value, written",
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-42", "'-42"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("abc", "abc"),
        ("a=b", "a=b"),
        ("", ""),
        (None, ""),
        (12, "12"),
    ],
)
def test_cells_cannot_start_a_formula(value, written):
    assert safe_cell(value) == written


def test_csv_bytes_quotes_and_neutralises_every_cell():
    data = csv_bytes([["=cmd|' /C calc'!A0", 'a,"b"', "-1"]], header=["a", "b", "c"])
    assert list(csv.reader(io.StringIO(data.decode()))) == [["a", "b", "c"], ["'=cmd|' /C calc'!A0", 'a,"b"', "'-1"]]


def test_rule_files_are_validated_strictly(tmp_path, monkeypatch):
    good = {"client": "acme", "exclusions": [{"when": {"gender": ["f"], "age_below": 18}, "offers": ["offer_2"]}]}
    rules = parse_rules(good, "acme")
    assert rules.eligible(["OFFER_1", "OFFER_2"], 17, "F", "Asia") == ["OFFER_1"]
    assert rules.eligible(["OFFER_1", "OFFER_2"], 18, "F", "Asia") == ["OFFER_1", "OFFER_2"]
    for bad in (
        {**good, "client": "other"},
        {**good, "extra": 1},
        {"client": "acme", "exclusions": [{"when": {"region": ["Mars"]}, "offers": ["OFFER_1"]}]},
        {"client": "acme", "exclusions": [{"when": {"age_over": 65}, "offers": ["OFFER_1"]}]},
        {"client": "acme", "exclusions": [{"when": {"age_above": "65"}, "offers": ["OFFER_1"]}]},
        {"client": "acme", "exclusions": [{"when": {"age_above": 65}, "offers": ["PRODUCT_1"]}]},
        {"client": "acme", "exclusions": [{"when": {}, "offers": ["OFFER_1"]}]},
        {"client": "acme", "exclusions": [{"offers": ["OFFER_1"]}]},
    ):
        with pytest.raises(ValueError):
            parse_rules(bad, "acme")
    monkeypatch.setenv("CLIENT_RULES_DIR", str(tmp_path))
    (tmp_path / "acme.json").write_text(json.dumps(good))
    assert load_rules("acme") == rules
    (tmp_path / "broken.json").write_text("{")
    for client, message in (
        ("broken", "not valid JSON"),
        ("nobody", "no eligibility rules"),
        ("../etc", "not a client name"),
    ):
        with pytest.raises(RulesError, match=message):
            load_rules(client)


def test_company_b_rules_ship_as_data():
    assert [sorted(e.offers) for e in COMPANY_B.exclusions] == [
        ["OFFER_4", "OFFER_5", "OFFER_6"],
        ["OFFER_1", "OFFER_3", "OFFER_4"],
    ]


def test_object_paths():
    assert client_and_stem("company_b/2022-05-01.csv") == ("company_b", "2022-05-01")
    assert output_paths("company_b/in/May.CSV") == ("company_b/in/May.results.csv", "company_b/in/May.errors.csv")
    for name in ("loose.csv", "company_b/notes.txt", "company_b/"):
        with pytest.raises(FileError):
            client_and_stem(name)


@pytest.mark.parametrize("policy", [agents.STATIC, agents.LEARNING])
def test_a_group_of_rows_gets_the_slates_of_one_request_each(policy):
    segment = segments.segment_of(70, "F", "Europa")
    eligible = ("OFFER_2", "OFFER_7", "OFFER_8", "OFFER_9", "OFFER_10")
    counts = {"OFFER_9": (40.0, 1.0), "OFFER_2": (10.0, 6.0)}
    grouped = agents.slates(policy, segment, eligible, counts, np.random.default_rng(7), rows=200)
    rng = np.random.default_rng(7)
    one_by_one = [agents.slates(policy, segment, list(eligible), counts, rng)[0] for _ in range(200)]
    assert grouped == one_by_one
    assert all(len(set(slate)) == 3 for slate in one_by_one)
