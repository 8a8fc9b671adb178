"""Which offer is winning: /offers/compare and the interval of /offer_ids/{id}/stats, through the
gateway against the Firestore emulator."""

import requests

from shared.cpa.models import MAX_COMPARED


def compare(api, offer_ids: str) -> requests.Response:
    return requests.get(f"{api}/offers/compare/", params={"offer_ids": offer_ids}, timeout=30)


def send(api, offer: int, clicks: int, conversions: int, payout: int, first_click: int) -> None:
    for n in range(clicks):
        click = first_click + n
        assert requests.get(f"{api}/sample/", params={"click_id": click, "offer_ids": offer}, timeout=30).ok
        reward = payout if n < conversions else 0
        assert requests.put(f"{api}/feedback/", params={"click_id": click, "reward": reward}, timeout=30).ok


def test_compare_reports_exact_totals_intervals_and_the_probability_of_being_best(api):
    send(api, 1, clicks=60, conversions=2, payout=100, first_click=1000)  # ~3 cents a click
    send(api, 2, clicks=60, conversions=12, payout=1000, first_click=2000)  # ~200 cents a click
    answer = compare(api, "2,1")
    assert answer.status_code == 200
    body = answer.json()
    assert [offer["offer_id"] for offer in body["offers"]] == [2, 1]  # the order asked
    two, one = body["offers"]
    assert (two["clicks"], two["conversions"], two["reward"], two["rpc"]) == (60, 12, 12_000, 200.0)
    assert (one["clicks"], one["conversions"], one["reward"]) == (60, 2, 200)
    assert body["best"] == 2 and two["p_best"] > 0.99 and body["payout_known"] is True and body["level"] == 0.95
    assert abs(one["p_best"] + two["p_best"] - 1.0) < 1e-3
    assert one["rpc_low"] < one["rpc"] < one["rpc_high"] < two["rpc_low"] < 200.0 < two["rpc_high"]
    # an offer never clicked: its rate is anyone's guess (Jeffreys), its payout borrowed from the
    # others: a wide interval, and a real chance of being the best
    three = compare(api, "2,1,3").json()["offers"][2]
    assert three["clicks"] == 0 and three["rpc"] == 0.0
    assert three["rpc_low"] < one["rpc_high"] and three["rpc_high"] > two["rpc_high"] and three["p_best"] > 0.1
    # the single offer's stats carry the same kind of interval, from the same exact counters
    alone = requests.get(f"{api}/offer_ids/2/stats", timeout=30).json()
    assert alone["rpc_low"] < 200.0 < alone["rpc_high"]
    assert compare(api, "2,1").json() == body  # seeded draws: the same counters, the same answer


def test_compare_without_any_conversion_has_no_interval_but_still_ranks_rates(api):
    send(api, 5, clicks=30, conversions=0, payout=0, first_click=1)
    body = compare(api, "5,6").json()
    assert body["payout_known"] is False
    assert all(offer["rpc_low"] is None and offer["rpc_high"] is None for offer in body["offers"])
    assert abs(sum(offer["p_best"] for offer in body["offers"]) - 1.0) < 1e-3


def test_compare_works_without_the_trailing_slash_and_as_a_json_body(api):
    assert requests.get(f"{api}/offers/compare", params={"offer_ids": "7"}, timeout=30).json()["best"] == 7
    listed = requests.get(f"{api}/offers/compare/", json={"offer_ids": [8, 9]}, timeout=30)
    assert [offer["offer_id"] for offer in listed.json()["offers"]] == [8, 9]


def test_bad_compare_input_is_400_naming_offer_ids(api):
    too_many = ",".join(str(n) for n in range(MAX_COMPARED + 1))
    for offer_ids in ("", "1,x", "1,1", "-1", too_many):
        answer = compare(api, offer_ids)
        assert answer.status_code == 400, offer_ids
        assert answer.json()["field"] == "offer_ids"
    assert requests.get(f"{api}/offers/compare/", timeout=30).json()["field"] == "offer_ids"
    assert requests.post(f"{api}/offers/compare/", params={"offer_ids": "1"}, timeout=30).status_code == 405
