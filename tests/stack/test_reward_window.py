"""Several reward events of one click through the one local URL, and the 33rd refused."""

import requests

from shared.cpa import settlement


def test_the_gateway_sums_events_on_time_and_refuses_the_33rd(api):
    assert requests.get(f"{api}/sample", params={"click_id": 40, "offer_ids": "2"}, timeout=30).status_code == 200
    for n in range(settlement.MAX_EVENTS_PER_CLICK):
        answer = requests.put(f"{api}/feedback", params={"click_id": 40, "reward": 1, "event_id": f"e{n}"}, timeout=30)
        assert answer.status_code == 200, answer.text
    assert answer.json() | {"offer_id": None} == {
        "click_id": 40,
        "offer_id": None,
        "is_conversion": True,
        "reward": settlement.MAX_EVENTS_PER_CLICK,
        "event_id": f"e{settlement.MAX_EVENTS_PER_CLICK - 1}",
        "late": False,  # the default window is a day
    }
    refused = requests.put(f"{api}/feedback", params={"click_id": 40, "reward": 1, "event_id": "e99"}, timeout=30)
    assert refused.status_code == 409 and refused.json()["field"] == "event_id"
    stats = requests.get(f"{api}/offer_ids/2/stats", timeout=30).json()
    assert (stats["clicks"], stats["conversions"], stats["reward"]) == (1, 1, settlement.MAX_EVENTS_PER_CLICK)
