"""Packs of batch episodes (shared/customer/packs.py) and a file's plan (shared/batch/plan.py), pure."""

import datetime
import json
import random

import pytest

from shared.batch import status
from shared.batch.plan import Plan
from shared.customer import packs

CREATED = datetime.datetime(2026, 5, 1, tzinfo=datetime.UTC)
FILE = packs.PackFile(
    "a" * 40, "inbox/company_b/f.csv", "7", 64, CREATED, CREATED + datetime.timedelta(days=365), "static", "1", "src"
)


def test_episode_ids_name_their_pack_and_row_and_nothing_else_parses_as_one():
    episode_id = packs.episode_id(FILE.key, 63, 123_456_789)
    assert packs.parse_episode_id(episode_id) == (FILE.key, 63, 123_456_789)
    assert packs.is_batch_episode_id(episode_id) and len(episode_id) <= 128
    for other in ("0123456789abcdef0123456789abcdef", "b-zz", "b-" + "a" * 20 + "-1", None, ""):
        assert packs.parse_episode_id(other) is None


def test_customers_spread_evenly_over_buckets_and_keep_theirs():
    counts = [0] * 50
    for n in range(50_000):
        counts[packs.bucket_of(str(1_000_000 + n), 50)] += 1
    assert max(counts) < 1.15 * 1000 and min(counts) > 0.85 * 1000  # sequential ids hash evenly
    assert packs.bucket_of("c1", 50) == packs.bucket_of("c1", 50)


def test_pack_ids_of_one_file_do_not_run_in_order():
    ids = [packs.pack_id(FILE.key, bucket) for bucket in range(200)]
    assert ids != sorted(ids) and len(set(ids)) == 200
    assert packs.pack_id(FILE.key, 5, 2) == packs.pack_id(FILE.key, 5) + ".2"


def entries(rows: int, note_bytes: int = 10, seed: int = 1) -> bytes:
    rng = random.Random(seed)
    note = lambda: "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(note_bytes))  # noqa: E731
    return b"".join(
        packs.entry_line(n * 100, f"c{n}", "2026-05-01", "30-44|Asia|F", ["OFFER_1", "OFFER_2"], {"note": note()})
        for n in range(rows)
    )


def test_a_pack_is_one_document_until_it_would_pass_the_size_limit():
    (one,) = packs.pack_documents(FILE, 3, entries(1000)).values()
    assert one["rows"] == 1000 and one["parts"] == 1 and len(one["entries"]) < 100_000
    documents = packs.pack_documents(FILE, 3, entries(3000, note_bytes=600))  # ~1.8 MB of random text
    assert len(documents) > 1 and all(len(d["entries"]) <= packs.MAX_PART_BYTES for d in documents.values())
    assert sum(d["rows"] for d in documents.values()) == 3000
    assert {d["parts"] for d in documents.values()} == {len(documents)}
    assert set(documents) == {packs.pack_id(FILE.key, 3, part) for part in range(len(documents))}
    found = [e for d in documents.values() for e in packs._entries(d, FILE.key, 3)]
    assert [e.customer_id for e in found] == [f"c{n}" for n in range(3000)]
    assert found[7].episode_id == packs.episode_id(FILE.key, 3, 700) and found[7].created_at == CREATED


def test_undecodable_bytes_survive_a_pack():
    line = packs.entry_line(1, "c\udcff", "2026-05-01", "s", ["OFFER_1"], {"x": "\udc80"})
    (document,) = packs.pack_documents(FILE, 0, line).values()
    (episode,) = packs._entries(document, FILE.key, 0)
    assert episode.customer_id == "c\udcff" and episode.states == {"x": "\udc80"}


def plan(**changes) -> Plan:
    fields = {
        "version": 1,
        "job_id": "f" * 40,
        "bucket": "inbox",
        "name": "company_b/x.csv",
        "generation": "1",
        "size": 1000,
        "tenant": "default",
        "client": "company_b",
        "policy": "static",
        "created_at": CREATED.isoformat(),
        "response_date": "2026-05-01",
        "header": ["customer_id", "age", "gender", "region", "OFFER_1"],
        "header_end": 40,
        "header_lines": 1,
        "rules": {"client": "company_b", "exclusions": []},
        "names": {"OFFER_1": None},
        "evidence": {},
        "bounds": [40, 500, 1000],
        "buckets": 3,
        "groups": 2,
        "seed": 7,
        "inline": False,
    }
    return Plan(**(fields | changes))


def test_a_plan_survives_its_json_and_falls_back_to_one_range():
    original = plan()
    assert Plan.loads(original.dumps()) == original and json.loads(original.dumps())["seed"] == 7
    one = original.as_one_range()
    assert (one.version, one.bounds, one.groups, one.ranges) == (2, [40, 1000], 1, 1)
    assert one.pack_file().created_at == CREATED and one.pack_file().key == "f" * 20


@pytest.mark.parametrize(
    "earlier, later",
    [(None, "v1:score"), ("v1:score", "v1:pack"), ("v1:pack", "v1:finish"), ("v1:finish", "v2:score")],
)
def test_stages_only_move_forward(earlier, later):
    assert status._stage_order(earlier) < status._stage_order(later)
