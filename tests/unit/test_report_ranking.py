"""The report never ranks an offer with too few all-time clicks (tools/report/ranking.py): it is
listed as "not enough data", never "most likely best", and the baseline is priced from the offers
with data. Pure: the page is rendered from ReportData built here, no Firestore."""

import datetime
import math
import re

import numpy as np
import pytest

from shared.cpa import insights
from shared.cpa.policies import OfferStats
from tools.report import page, ranking
from tools.report.data import Clicks, Episodes, Limits, ReportData

LIMITS = Limits(max_clicks=50_000, max_episodes=20_000, max_offers=20, min_clicks=ranking.MIN_CLICKS)


def counters(clicks: int, conversions: int, payout: float) -> OfferStats:
    """All-time counters of an offer whose every conversion paid `payout` cents."""
    log = math.log(payout)
    return OfferStats(
        clicks=clicks,
        conversions=conversions,
        reward=conversions * payout,
        reward_sq=conversions * payout**2,
        log_conversions=conversions,
        log_reward=conversions * log,
        log_reward_sq=conversions * log**2,
    )


JUST_RESET = OfferStats()  # its counters were archived and zeroed: no clicks yet
OFFERS = [101, 102, 103]
STATS = [counters(400, 20, 500.0), counters(400, 30, 600.0), JUST_RESET]  # 25 and 45 cents a click


def report_data(offers: list[int], stats: list[OfferStats], clicks: int = 200) -> ReportData:
    now = datetime.datetime(2026, 1, 8, tzinfo=datetime.UTC)
    rng = np.random.default_rng(2)
    return ReportData(
        since=now - datetime.timedelta(days=7),
        until=now,
        clicks=Clicks(
            offer_id=rng.choice(offers, clicks) if offers else np.array([], dtype=np.int64),
            sampled_at=np.sort(now.timestamp() - rng.random(clicks) * 3600) if offers else np.array([]),
            reward=np.where(rng.random(clicks) < 0.05, 500.0, 0.0) if offers else np.array([]),
            truncated=False,
        ),
        episodes=Episodes([], [], np.array([], dtype=bool), np.array([], dtype=bool), truncated=False),
        offers=offers,
        stats=stats,
        offers_left_out=0,
    )


def test_without_the_rule_an_offer_just_reset_would_be_most_likely_best():
    # Why the rule exists: its rate is the prior alone, which wins most draws.
    found = insights.revenue_per_click(STATS, np.random.default_rng(0))
    assert int(np.argmax(found.p_best)) == 2 and found.p_best[2] > 0.5 and found.observed[2] == 0


def test_an_offer_with_too_few_clicks_is_listed_not_ranked():
    ranked = ranking.rank(OFFERS, STATS, np.random.default_rng(0))
    assert ranked.offers == [101, 102] and ranked.unranked == [(103, JUST_RESET)]
    assert ranked.found.p_best.sum() == pytest.approx(1.0)
    assert ranked.best_offer == 102 and ranked.best_revenue_per_click == pytest.approx(45.0)
    assert [ranked.offers[i] for i in ranked.order()] == [102, 101]


def test_the_threshold_counts_all_time_clicks():
    few = counters(ranking.MIN_CLICKS - 1, 5, 2_000.0)  # a high revenue per click, on too few clicks
    enough = counters(ranking.MIN_CLICKS, 1, 100.0)
    ranked = ranking.rank([1, 2], [few, enough], np.random.default_rng(0))
    assert ranked.offers == [2] and ranked.unranked == [(1, few)] and ranked.best_offer == 2
    assert ranking.rank([1, 2], [few, enough], np.random.default_rng(0), min_clicks=10).best_offer == 1


def test_no_offer_with_enough_clicks_names_no_best_and_no_baseline():
    ranked = ranking.rank([7, 8], [JUST_RESET, counters(3, 1, 100.0)], np.random.default_rng(0))
    assert ranked.offers == [] and ranked.found is None and ranked.best_offer is None
    assert ranked.best_revenue_per_click == 0.0 and [offer for offer, _ in ranked.unranked] == [8, 7]


def test_the_page_never_names_an_offer_just_reset_best_and_prices_the_baseline_from_offers_with_data(tmp_path):
    out = tmp_path / "report.html"
    page.render(report_data(OFFERS, STATS), out, LIMITS, "a test", np.random.default_rng(1))
    text = out.read_text()
    assert "<b>offer 102</b><span>most likely best offer</span>" in text
    assert "had each paid offer 102&#x27;s revenue per click (45.0 cents" in text
    row = re.search(r"<tr><td>offer 103</td>.*?</tr>", text).group(0)
    assert "not enough data (fewer than 30 clicks)" in row and "%" not in row
    ranked_rows = re.findall(r"<tr><td>offer (\d+)</td>.*?<td>([\d.]+)%</td></tr>", text)
    assert [offer for offer, _ in ranked_rows] == ["102", "101"]
    assert sum(float(p) for _, p in ranked_rows) == pytest.approx(100, abs=0.2)
    assert "Not enough data, not ranked (fewer than 30 all-time clicks" in text and "offer 103 (0)" in text


def test_the_page_with_no_offer_ranked_says_so_and_draws_no_baseline(tmp_path):
    out = tmp_path / "report.html"
    page.render(
        report_data([7, 8], [JUST_RESET, counters(3, 1, 100.0)]), out, LIMITS, "a test", np.random.default_rng(1)
    )
    text = out.read_text()
    assert "<b>–</b><span>most likely best offer</span>" in text
    assert "No offer has 30 all-time clicks yet, so no best offer to compare with." in text
    assert "dashed line" not in text and text.count("not enough data (fewer than 30 clicks)") == 2
