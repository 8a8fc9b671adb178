"""`make evaluate` (tools/evaluate.py) on exported logs: shadows, slate propensities and raw documents,
pure (no emulator)."""

import json
import re

import numpy as np

from tools import evaluate


def test_shadows_and_slate_propensities_are_evaluated_when_the_documents_carry_them(tmp_path):
    rng = np.random.default_rng(5)
    lines = []
    for i in range(400):
        offer = int(rng.integers(1, 4))
        shadow = 3 if rng.random() < 0.8 else offer  # agrees whenever the live choice was 3, or by chance
        click = {
            "collection": "cpa_clicks",
            "offer_id": offer,
            "candidates": "1,2,3",
            "sampler": "random",
            "probability": 1 / 3,
            "reward": 1500 if offer == 3 and rng.random() < 0.1 else 0,
            "sampled_at": 1000.0 + i,
            "feedback_at": 1000.5 + i,
            "shadow": {"sampler": "klucb", "offer_id": shadow, "probability": 0.9},
        }
        lines.append(json.dumps(click))
    for i in range(200):
        slate = ["OFFER_1", "OFFER_2"] if i % 2 else ["OFFER_2", "OFFER_3"]
        episode = {
            "collection": "episodes",
            "created_at": 2000.0 + i,
            "rewarded": True,
            "accepted": i % 3 == 0,
            "accepted_offer": None,  # accepted without naming one: credit shared across the slate
            "slate": slate,
            "inclusion": {"OFFER_1": 0.5, "OFFER_2": 1.0, "OFFER_3": 0.5},
            "shadow": {
                "policy": "static",
                "slate": ["OFFER_1", "OFFER_2"],
                "inclusion": {"OFFER_1": 1.0, "OFFER_2": 1.0},
            },
        }
        lines.append(json.dumps(episode))
    export = tmp_path / "export.jsonl"
    export.write_text("\n".join(lines) + "\n")
    out = []
    assert evaluate.main(["--export", str(export), "--samplers", "random,klucb"], out=out.append) == 0
    text = "\n".join(out)
    shadow = next(line for line in out if line.strip().startswith("klucb") and "agrees" in line)
    agreement = float(re.search(r"agrees with the live choice ([\d.]+)%", shadow).group(1)) / 100
    # agrees when the live offer is 3 (1/3), or otherwise when the shadow copied it (0.2 x 2/3): 0.467
    assert abs(agreement - 0.467) < 0.075, shadow
    assert "IPS" in shadow and "—" not in shadow
    offers = {line.split()[0]: line for line in out if line.startswith("  OFFER_")}
    assert set(offers) == {"OFFER_1", "OFFER_2", "OFFER_3"}, text
    assert "Logged policy's acceptance rate: 0.335" in text, text  # 67 of 200 accepted
    assert "Shadow agent static on 200 episodes: same slate 50.0%" in text, text


def test_an_export_of_raw_documents_reads_like_the_store_writes_them(tmp_path):
    click = {"offer_id": 7, "candidates": "7,8", "sampler": "random", "probability": 0.5, "reward": 300}
    lines = [
        {"collection": "cpa_clicks", **click, "sampled_at": "2024-01-02T10:00:00+00:00", "feedback_at": None},
        {
            "collection": "cpa_clicks",
            **click,
            "offer_id": 9,
            "sampled_at": "2024-01-02T10:00:01+00:00",
        },  # not a candidate
        {"collection": "cpa_clicks", **click, "probability": None, "sampled_at": "2024-01-02T10:00:02+00:00"},
        {
            "collection": "episodes",
            "created_at": "2024-01-02T10:00:00+00:00",
            "up_to_date": True,
            "accepted": True,
            "accepted_offer": "OFFER_2",
            "predicted_offer_1": "OFFER_1",
            "predicted_offer_2": "OFFER_2",
            "inclusion": {"OFFER_1": 1.0, "OFFER_2": 0.5},
        },
    ]
    export = tmp_path / "raw.jsonl"
    export.write_text("\n".join(json.dumps(line) for line in lines))
    out = []
    evaluate.main(["--export", str(export), "--samplers", "random"], out=out.append)
    text = "\n".join(out)
    assert "3 read, 1 with a usable logged probability (1 without, 1 malformed)" in text, text
    assert "Customer episodes: 1 read, 1 rewarded, 1 of them with `inclusion`." in text, text
    assert "Logged policy's acceptance rate: too few episodes" in text, text


def test_an_ess_just_under_the_threshold_prints_under_it_beside_too_few_clicks():
    estimate = (10.0, 5.0, 15.0)
    assert evaluate._fmt(estimate, 29.6) == "too few clicks"
    assert evaluate._whole(29.6) == 29 < evaluate.MIN_CLICKS  # printed 30 before
    assert evaluate._fmt(estimate, 30.0) == "10.00 [5.00, 15.00]" and evaluate._whole(30.0) == 30
    assert evaluate._whole(float("nan")) == 0
