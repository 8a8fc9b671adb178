"""`make evaluate` (tools/evaluate.py) on tiny logs, from an export (no Firestore): no warning of
any kind, no infinite interval; where an estimate rests on too few clicks (or episodes) it says
so instead of printing one."""

import json
import re
import warnings

import pytest

from tools import evaluate


def click(i: int, offer: int, **fields) -> dict:
    row = {
        "collection": "cpa_clicks",
        "offer_id": offer,
        "candidates": "1,2,3",
        "sampler": ("thompson", "random", "klucb")[i % 3],
        "probability": 0.4,
        "reward": 0,
        "sampled_at": 1000.0 + i,
        "feedback_at": 1000.5 + i,
    }
    return row | fields


def episode(i: int) -> dict:
    return {
        "collection": "episodes",
        "created_at": 2000.0 + i,
        "rewarded": True,
        "accepted": i == 0,
        "accepted_offer": None,
        "slate": ["OFFER_1", "OFFER_2"],
        "inclusion": {"OFFER_1": 0.5, "OFFER_2": 1.0, "OFFER_3": 0.5},
        "shadow": {"policy": "static", "slate": ["OFFER_1", "OFFER_2"], "inclusion": {"OFFER_1": 1.0}},
    }


def evaluated(tmp_path, rows: list[dict], capfd) -> str:
    export = tmp_path / "log.jsonl"
    export.write_text("".join(json.dumps(row) + "\n" for row in rows))
    lines = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's RuntimeWarnings (All-NaN slice, ...) fail the test
        assert evaluate.main(["--export", str(export)], out=lines.append) == 0
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == "", captured  # nothing printed around the report
    text = "\n".join(lines)
    assert not re.search(r"\binf\b|nan", text, re.IGNORECASE), text
    return text


# Half the clicks know two payouts, half none, under one floor: one replay batch that mixes both.
SIX_CLICKS = [
    click(i, 1 + i % 3, reward=300 if i == 2 else 0, **({"payouts": [200, None, 1500]} if i % 2 == 0 else {}))
    for i in range(6)
] + [episode(i) for i in range(3)]


@pytest.mark.parametrize(
    "rows",
    [SIX_CLICKS, [click(0, 1)] + [episode(0)], [click(0, 1, shadow={"sampler": "klucb", "offer_id": 1})]],
    ids=["six clicks, mixed payouts", "one click", "one click with a shadow"],
)
def test_a_tiny_log_prints_too_few_clicks_without_warnings_or_infinite_intervals(tmp_path, capfd, rows):
    text = evaluated(tmp_path, rows, capfd)
    assert "too few clicks" in text and not re.search(r"\[-?\d", text), text  # not one interval printed


def test_estimates_are_printed_once_they_rest_on_enough_clicks(tmp_path, capfd):
    rows = [click(i, 1 + i % 3, sampler="random", probability=1 / 3, reward=500 * (i % 7 == 0)) for i in range(90)]
    text = evaluated(tmp_path, rows, capfd)
    logged = next(line for line in text.splitlines() if line.strip().startswith("(logged)"))
    assert re.search(r"\(logged\)\s+[\d.]+ \[-?[\d.]+, [\d.]+\]", logged), text
    random = next(line for line in text.splitlines() if line.strip().startswith("random "))
    assert "too few" not in random, text  # its weights are all 1: it rests on every click
