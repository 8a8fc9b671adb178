"""Click context, the contextual sampler, caps and pacing: the pure parts (issue 24)."""

import datetime

import numpy as np
import pytest

from shared.cpa import adjust, caps, context_model, serving
from shared.cpa.models import SampleRequest
from shared.cpa.policies import SAMPLERS, OfferStats, SamplerParams, Stats, choose_batch, thompson_propensities
from shared.cpa.policies.contextual import Adjustments, ContextParams, _in_context, adjusted
from shared.cpa.policies.thompson_integral import _products_of_the_others
from shared.cpa.policies.thompson_model import retry_floors, thompson_posterior
from tests.conftest import function_client

STATS = Stats.of(
    [
        OfferStats(1000, 20, 10_000, 5e6, 20, 20 * np.log(500), 20 * np.log(500) ** 2),
        OfferStats(500, 5, 10_000, 2e7, 5, 5 * np.log(2000), 5 * np.log(2000) ** 2),
        OfferStats(),
    ]
)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("geo", "XX"),
        ("geo", "FRA"),
        ("device", "tv"),
        ("os", "a.b"),
        ("os", ""),
        ("source", "-x"),
        ("source", "a" * 65),
    ],
)
def test_an_invalid_context_field_is_a_400_naming_it(field, value):
    answer = function_client("sample").get("/sample", query_string={"click_id": 1, "offer_ids": "3,5", field: value})
    assert answer.status_code == 400
    assert answer.get_json()["field"] == field and answer.get_json()["error"].startswith(f"{field}: ")


def test_context_fields_are_normalised_and_recorded():
    request = SampleRequest.model_validate(
        {"click_id": "1", "offer_ids": "1,2", "geo": "fr", "device": "Mobile", "os": "iOS", "source": "Pub_7"}
    )
    assert request.context() == {"geo": "FR", "device": "mobile", "os": "ios", "source": "Pub_7"}
    assert request.logged() == {"context": request.context()}
    assert SampleRequest.model_validate({"click_id": "1", "offer_ids": "1"}).logged() == {}


def test_contextual_without_adjustments_decides_and_logs_exactly_as_thompson():
    for seed in range(20):
        plain = choose_batch("thompson", STATS, np.array([10_000]), SamplerParams(), np.random.default_rng(seed))
        context_free = choose_batch(
            "contextual", STATS, np.array([10_000]), ContextParams(), np.random.default_rng(seed)
        )
        assert plain.index.tolist() == context_free.index.tolist()
        assert plain.probability.tolist() == context_free.probability.tolist()


def test_re_tries_are_thompsons_move_with_the_context_and_pacing_leaves_them_out():
    """With retries on, a click without adjustments is thompson's with retries; under a context an
    offer's floor moves as its mean rate does, so a context that says the offer does badly here
    lowers its floor instead of being overridden by it; a click with pacing has none."""
    retries = {"retry_level": 0.5, "floor": 0.0}
    for seed in range(10):
        clicks = np.array([10_000])
        plain = choose_batch("thompson", STATS, clicks, SamplerParams(**retries), np.random.default_rng(seed))
        free = choose_batch("contextual", STATS, clicks, ContextParams(**retries), np.random.default_rng(seed))
        assert plain.probability.tolist() == free.probability.tolist()
    params = SamplerParams(**retries)
    posterior = thompson_posterior(STATS, params)
    thompsons = retry_floors(STATS, params, posterior[2])
    worse_here = Adjustments(np.array([[-3.0, 0.0, 0.0]]), np.zeros((1, 3)))
    kept, moved, floors = _in_context(STATS, ContextParams(adjust=worse_here, **retries), worse_here)
    assert kept.retry_level == 0.5
    ratio = (moved[0] / (moved[0] + moved[1]))[0, 0] / (posterior[0] / (posterior[0] + posterior[1]))[0, 0]
    assert ratio == pytest.approx(np.exp(-3.0))
    assert floors[0, 0] == pytest.approx(thompsons[0, 0] - 3.0)
    assert floors[0, 1:].tolist() == thompsons[0, 1:].tolist()  # untouched: thompson's floor

    def shares(adjust, **options):
        return SAMPLERS["contextual"].probabilities(STATS, ContextParams(adjust=adjust, floor=0.0, **options))

    assert not np.allclose(shares(worse_here, retry_level=0.5), shares(worse_here, retry_level=None))
    paced = worse_here._replace(log_value=np.array([[np.log(0.5), 0.0, 0.0]]))
    assert shares(paced, retry_level=0.5).tolist() == shares(paced, retry_level=None).tolist()


def test_an_adjustment_of_nothing_leaves_the_posterior_as_it_is_and_a_shift_moves_its_mean():
    posterior = thompson_posterior(STATS, SamplerParams())
    same = adjusted(posterior, Adjustments.none(1, 3))
    assert all(np.array_equal(x, y) for x, y in zip(posterior, same, strict=True))
    a, b, _, _ = adjusted(posterior, Adjustments(np.array([[np.log(2.0), 0.0, 0.0]]), np.zeros((1, 3))))
    before = posterior[0][0, 0] / (posterior[0][0, 0] + posterior[1][0, 0])
    assert a[0, 0] / (a[0, 0] + b[0, 0]) == pytest.approx(2 * before)
    _, _, m, _ = adjusted(posterior, Adjustments(np.zeros((1, 3)), np.zeros((1, 3)), np.array([[np.log(0.5), 0, 0]])))
    assert m[0, 0] == pytest.approx(posterior[2][0, 0] + np.log(0.5))


def test_contextual_logs_its_exact_probability():
    params = ContextParams(adjust=Adjustments(np.array([[0.4, -0.3, 0.0]]), np.array([[0.05, 0.2, 0.0]])))
    shares = SAMPLERS["contextual"].probabilities(STATS, params)[0]
    rng = np.random.default_rng(1)
    wins = np.zeros(3)
    batch = Stats(*(np.repeat(part, 20_000, axis=0) for part in STATS))
    tiled = ContextParams(adjust=Adjustments(*(np.repeat(x, 20_000, axis=0) for x in params.adjust[:2])))
    decided = choose_batch("contextual", batch, np.full(20_000, 10_000), tiled, rng, propensity=False)
    wins += np.bincount(decided.index, minlength=3)
    assert np.abs(wins / wins.sum() - shares).max() < 0.015


def alone(effects: context_model.FeatureEffects, value: str) -> tuple[float, float]:
    """The shift of ln(rate) and its variance for an offer decided alone (a candidate set of one)."""
    found = context_model.adjustments({"geo": value}, [{"geo": effects}])
    return (0.0, 0.0) if found is None else (float(found.log_rate[0, 0]), float(found.log_rate_var[0, 0]))


def test_a_value_never_seen_starts_at_the_offers_average_and_a_rich_one_moves_away():
    counts = {"FR": [5000, 250], "DE": [5000, 50], "US": [4000, 120], "rare": [10, 1]}
    effects = context_model.feature_effects(counts)
    assert alone(effects, "new-source")[0] == 0.0 and alone(effects, "new-source")[1] > 0
    assert alone(effects, "FR")[0] > 0.3 and alone(effects, "DE")[0] < -0.6  # strong evidence: far from 1
    assert abs(alone(effects, "rare")[0]) < abs(np.log(0.1 / (420 / 14010)))  # shrunk towards 1
    thin = context_model.feature_effects({"FR": [50, 1], "DE": [40, 0]})
    assert alone(thin, "FR") == (0.0, 0.0)  # too little to learn from
    assert (
        thin.rows == {} and len(thin.counted) == 0 and thin.squares > 0
    )  # no values kept, only its terms of the pooled spread
    assert context_model.adjustments({}, [{"geo": effects}]) is None
    found = context_model.adjustments({"geo": "FR", "device": "mobile"}, [{"geo": effects}, None])
    assert found.log_rate[0, 0] == pytest.approx(alone(effects, "FR")[0]) and found.log_rate[0, 1] == 0.0
    assert found.base_log_rate[0, 0] == pytest.approx(np.log(421 / 14010)) and np.isnan(found.base_log_rate[0, 1])


def test_offers_tables_share_one_string_per_value_and_find_each_values_counts():
    """An instance holds a table per offer and feature, thousands of sources each: the values decoded
    from two offers' documents are two strings, and the tables keep one of them."""
    decoded = [{"".join(("src-", str(i))): [100 + i, 5] for i in range(300)} for _ in range(2)]
    assert next(iter(decoded[0])) is not next(iter(decoded[1]))
    first, second = (context_model.feature_effects(counts) for counts in decoded)
    assert [a is b for a, b in zip(first.rows, second.rows, strict=True)] == [True] * 300
    assert first.rows["src-299"] is second.rows["src-299"]  # the row numbers too
    rate = 1500 / sum(100 + i for i in range(300))
    assert first.of("src-7") == pytest.approx((5.0, 107 * rate), rel=1e-12)
    assert first.of("src-300") is None and context_model.NO_EFFECT.of("src-7") is None


def test_the_adjustments_are_the_pooled_effect_tables_of_the_candidates_and_remembered_per_effects_list():
    """What the service computes per candidate set is what bench.context_bench computes with
    effect_tables over the same offers: the spread pooled over the candidates that gave the feature."""
    rng = np.random.default_rng(4)
    values = {"geo": ["FR", "DE", "US", "GB"], "source": [f"s{i}" for i in range(30)]}
    features = [None if j % 7 == 3 else ("geo", "source") if j % 2 else ("geo",) for j in range(40)]
    tables = {}  # (feature) -> (candidates, clicks, conversions)
    for feature, names in values.items():
        holders = [j for j, given in enumerate(features) if given and feature in given]
        clicks = rng.integers(500, 5000, (len(holders), len(names))).astype(float)
        effect = np.exp(rng.normal(0.0, 0.3, clicks.shape[1]))
        conversions = rng.binomial(clicks.astype(int), rng.uniform(0.005, 0.08, (len(holders), 1)) * effect / 2)
        if feature == "source":  # a value a third of its holders never saw: absent from their counts
            clicks[::3, 4] = conversions[::3, 4] = 0
        tables[feature] = (holders, clicks, conversions.astype(float))
    offers = [None if given is None else {} for given in features]
    for feature, (holders, clicks, conversions) in tables.items():
        for row, j in enumerate(holders):
            counts = {v: [clicks[row, i], conversions[row, i]] for i, v in enumerate(values[feature]) if clicks[row, i]}
            offers[j][feature] = context_model.feature_effects(counts)
    for context in ({"geo": "FR", "source": "s4"}, {"source": "new", "geo": "DE", "device": "mobile"}):
        shift, variance, rates, counted = np.zeros(40), np.zeros(40), np.zeros(40), np.zeros(40)
        for feature, value in context.items():
            if feature not in tables:
                continue
            holders, clicks, conversions = tables[feature]
            moved, spread, unseen, base = context_model.effect_tables(clicks, conversions)
            if value in values[feature]:
                column = values[feature].index(value)
                moved, spread = moved[:, column], spread[:, column]
            else:
                moved, spread = np.zeros(len(holders)), unseen
            shift[holders] += moved
            variance[holders] += spread
            known = ~np.isnan(base)
            rates[holders] += np.where(known, base, 0.0)
            counted[holders] += known
        found = context_model.adjustments(context, offers)
        assert found.log_rate[0] == pytest.approx(shift, rel=1e-12, abs=1e-15)
        assert found.log_rate_var[0] == pytest.approx(variance, rel=1e-12, abs=1e-15)
        with np.errstate(invalid="ignore"):
            base = np.where(counted > 0, rates / counted, np.nan)
        assert np.allclose(found.base_log_rate[0], base, rtol=1e-12, equal_nan=True)
        assert shift.any() and (variance > 0).sum() >= 30  # the features were found: the check means something
        if context["source"] == "s4":  # seen by some of its holders only: shifted there, unseen elsewhere
            moved = context_model._feature_columns(offers, "source", "s4")[0][tables["source"][0]]
            assert (moved[::3] == 0).all() and (moved[1::3] != 0).all()
        again = context_model.adjustments(context, offers)
        assert all(np.array_equal(a, b, equal_nan=True) for a, b in zip(found, again, strict=True) if a is not None)
    column = context_model._feature_columns(offers, "geo", "FR")
    assert context_model._feature_columns(offers, "geo", "FR") is column  # the same list: remembered
    assert context_model._feature_columns(list(offers), "geo", "FR") is not column  # another list: computed
    assert not column[0].flags.writeable


def test_a_feature_no_single_offer_shows_beyond_chance_is_found_when_the_candidates_pool_it():
    """200 sources at one or two conversions each: alone, an offer's source effects mostly do not
    pass the evidence test; over its 20 fellow candidates, the feature's spread does."""
    rng = np.random.default_rng(7)
    clicks = np.full((20, 200), 50.0)
    conversions = rng.poisson(clicks * 0.03 * np.exp(rng.normal(0.0, 0.3, clicks.shape)))
    offers = [
        {"source": context_model.feature_effects({f"s{i}": [50, int(c)] for i, c in enumerate(row)})}
        for row in conversions
    ]
    assert sum(context_model.adjustments({"source": "s1"}, [offer]) is None for offer in offers) >= 15
    found = context_model.adjustments({"source": "s1"}, offers)
    assert found is not None and (found.log_rate_var[0] > 0).all() and found.log_rate[0].any()


def test_the_context_multiplies_the_rate_its_counts_measured_not_the_live_one():
    """An offer shown mostly where it does well converts above its average lately: the context's
    multiplier applies to the average its counts hold, not to that, with thompson's prior still
    pulling it as it pulls the live rate."""
    posterior = thompson_posterior(STATS, SamplerParams())
    mean = posterior[0] / (posterior[0] + posterior[1])
    live = STATS.conversions / np.maximum(STATS.clicks, 1.0)
    base = np.array([[np.log(live[0, 0] / 2), np.log(live[0, 1]), np.nan]])  # offer 0's counts: half its live rate
    shift = np.array([[np.log(2.0), 0.0, 0.0]])
    a, b, _, _ = adjusted(posterior, Adjustments(shift, np.zeros((1, 3)), None, base), STATS)
    assert a[0, 0] / (a[0, 0] + b[0, 0]) == pytest.approx(mean[0, 0])  # half the rate, twice in this context
    # the counts hold the live statistics' own clicks: thompson's posterior as it is
    assert a[0, 1] / (a[0, 1] + b[0, 1]) == pytest.approx(mean[0, 1])
    assert (a[0, 2], b[0, 2]) == (posterior[0][0, 2], posterior[1][0, 2])
    # without the statistics, the counts' rate itself
    a, b, _, _ = adjusted(posterior, Adjustments(shift, np.zeros((1, 3)), None, base))
    assert a[0, 0] / (a[0, 0] + b[0, 0]) == pytest.approx(live[0, 0])


def test_a_feature_that_carries_nothing_reads_as_no_spread_and_one_that_does_is_found():
    rng = np.random.default_rng(5)
    clicks = np.full((200, 20, 30), 2_000.0)  # 200 candidate sets of 20 offers, a feature of 30 values, 2 %
    flat = rng.poisson(clicks * 0.02)
    effects = rng.poisson(clicks * 0.02 * np.exp(rng.normal(0.0, 0.3, clicks.shape)))
    unseen_flat = context_model.effect_tables(clicks, flat)[2]
    unseen_real = context_model.effect_tables(clicks, effects)[2]
    floor = context_model.trigamma(1.0 / context_model.MIN_SPREAD)
    assert np.mean(unseen_flat == 0.0) > 0.98  # chance excess is not an effect: the feature changes nothing
    assert np.all(unseen_real > 10 * floor)


def test_trigamma_matches_its_series():
    x = np.array([0.01, 0.5, 1.0, 3.0, 10.0, 200.0])
    exact = np.array([sum(1.0 / (v + n) ** 2 for n in range(200_000)) + 1.0 / (v + 200_000) for v in x])
    assert np.allclose(context_model.trigamma(x), exact, rtol=1e-5)


def test_caps_parse_keeps_the_valid_entries_and_names_the_others():
    problems: list[str] = []
    document = {
        "cpa": {
            "caps": {
                "42": {"conversions": 100, "tz": "Europe/Paris"},
                "7": {"cents": 250_000},
                "x": {"conversions": 1},
                "8": {"conversions": 1, "cents": 2},
                "9": {"conversions": -1},
                "10": {"cents": 5, "tz": "Mars/Olympus"},
                "11": "100",
            }
        }
    }
    found, problems = serving.parse_caps(None, document)
    assert found == {42: caps.Cap("conversions", 100.0, "Europe/Paris"), 7: caps.Cap("cents", 250_000.0, "UTC")}
    assert len(problems) == 5 and all(problem.startswith("cpa.caps.") for problem in problems)
    assert serving.parse_caps(None, {"cpa": {"caps": [1]}})[0] == {}
    assert serving.parse_caps({"cpa": {"caps": {"1": {"cents": 5}}}}, None)[0] == {}  # operators set none


def test_the_day_and_its_share_are_the_offers_time_zone():
    now = datetime.datetime(2027, 3, 1, 23, 30, tzinfo=datetime.UTC)
    assert caps.day_of(now, "UTC") == "2027-03-01" and caps.day_of(now, "Europe/Paris") == "2027-03-02"
    assert caps.day_fraction(now, "UTC") == pytest.approx(23.5 / 24)
    assert caps.day_fraction(now, "Europe/Paris") == pytest.approx(0.5 / 24)
    assert caps.old_days("2027-03-02")[0] == "day.2027-02-28" and len(caps.old_days("2027-03-02")) == 7


def test_a_day_of_23_or_25_hours_is_counted_in_real_seconds():
    """Paris's clocks go forward on 2027-03-28 and back on 2027-10-31: noon after the spring
    change is 11 of 23 hours gone, 23:30 after the autumn one 24.5 of 25 (wall-clock differences
    gave 12/23, and 23:00 read as the day's end)."""
    spring_noon = datetime.datetime(2027, 3, 28, 10, 0, tzinfo=datetime.UTC)  # 12:00 CEST
    assert caps.day_fraction(spring_noon, "Europe/Paris") == pytest.approx(11 / 23)
    spring_late = datetime.datetime(2027, 3, 28, 21, 30, tzinfo=datetime.UTC)  # 23:30 CEST
    assert caps.day_fraction(spring_late, "Europe/Paris") == pytest.approx(22.5 / 23)
    autumn_late = datetime.datetime(2027, 10, 31, 22, 30, tzinfo=datetime.UTC)  # 23:30 CET
    assert caps.day_fraction(autumn_late, "Europe/Paris") == pytest.approx(24.5 / 25)
    day = caps.local_day(spring_noon, "Europe/Paris")
    assert (day.key, day.yesterday) == ("2027-03-28", "2027-03-27")
    assert day.midnights[2] - day.midnights[1] == 23 * 3600
    state = caps.state_of(caps.Cap("conversions", 100.0, "Europe/Paris"), {}, spring_noon)
    assert state.day_fraction == pytest.approx(11 / 23)


def test_the_shadow_price_rises_with_spend_ahead_of_the_day_and_is_zero_behind_it():
    behind = caps.CapState(spent=40, limit=100, day_fraction=0.5)
    ahead = caps.CapState(spent=52, limit=100, day_fraction=0.5)
    far_ahead = caps.CapState(spent=90, limit=100, day_fraction=0.5)
    assert behind.price == 0.0 and 0.0 < ahead.price < far_ahead.price == caps.MAX_PRICE
    assert caps.CapState(100, 100, 0.99).reached and not caps.CapState(99, 100, 0.99).reached


def test_the_last_share_of_a_cap_is_spent_at_a_rising_price_whatever_the_hour():
    late = [caps.CapState(spent, 1000, day_fraction=0.999).price for spent in (979, 985, 990, 995, 999.9)]
    assert late[0] == 0.0 and (np.diff(late) > 0).all() and late[-1] < caps.MAX_PRICE
    assert caps.CapState(1000, 1000, 0.999).price == caps.MAX_PRICE
    batch = caps.prices(np.array([990.0, 5.0]), np.array([1000.0, np.inf]), 0.999)
    assert batch[0] == pytest.approx(late[2]) and batch[1] == 0.0


def test_the_plan_leaves_a_capped_out_offer_out_unless_it_is_the_only_one():
    now = datetime.datetime(2027, 3, 1, 12, tzinfo=datetime.UTC)
    day = caps.day_of(now)
    spent = {"day": {day: {"conversions": 3, "cents": 900}}}
    offer_caps = {5: caps.Cap("conversions", 3.0)}
    plan = adjust.plan("thompson", False, SamplerParams(), [5, 6], [spent, {}], {}, None, offer_caps, now)
    assert plan.eligible == [1] and plan.sampler == "contextual" and plan.capped[0].reached
    alone = adjust.plan("thompson", False, SamplerParams(), [5], [spent], {}, None, offer_caps, now)
    assert alone.eligible == [0]
    named = adjust.plan("klucb", True, SamplerParams(), [5, 6], [spent, {}], {}, None, offer_caps, now)
    assert named.sampler == "klucb" and named.eligible == [1]
    free = adjust.plan("thompson", False, SamplerParams(), [5, 6], [{}, {}], {}, None, {}, now)
    assert free.sampler == "thompson" and free.params == SamplerParams() and free.unpaced_params is None


def test_a_click_with_context_is_served_by_contextual_unless_it_names_a_sampler():
    fr = {"geo": "FR"}
    assert adjust.sampler_for("thompson", False, False, True) == "contextual"
    assert adjust.sampler_for("thompson", False, False, False) == "thompson"  # no context, no cap: as before
    assert adjust.sampler_for("thompson", True, False, True) == "thompson"  # named
    assert adjust.sampler_for("klucb", True, True, True) == "klucb"
    assert adjust.decides_on_context("thompson", False, fr) and adjust.decides_on_context("contextual", True, fr)
    assert not adjust.decides_on_context("thompson", False, {}) and not adjust.decides_on_context("thompson", True, fr)
    now = datetime.datetime(2027, 3, 1, 12, tzinfo=datetime.UTC)
    plan = adjust.plan("thompson", False, SamplerParams(), [5, 6], [{}, {}], fr, None, {}, now)
    assert plan.sampler == "contextual" and plan.params == SamplerParams()  # no effects loaded yet: as thompson


def test_the_products_of_the_others_are_exact_with_zeros():
    rng = np.random.default_rng(0)
    cdf = rng.uniform(size=(6, 40))
    cdf[rng.uniform(size=cdf.shape) < 0.3] = 0.0
    brute = np.array([np.prod(np.delete(cdf, i, axis=0), axis=0) for i in range(6)])
    assert np.allclose(_products_of_the_others(cdf), brute, rtol=1e-12, atol=0)


def test_thompson_probabilities_at_k_100_add_up_and_follow_the_draws():
    rng = np.random.default_rng(3)
    clicks = rng.integers(50, 5000, size=100)
    conversions = rng.binomial(clicks, rng.uniform(0.005, 0.08, size=100))
    payout = rng.uniform(200, 8000, size=100)
    stats = Stats.of(
        [
            OfferStats(int(c), int(v), float(v * p), float(v * p * p))
            for c, v, p in zip(clicks, conversions, payout, strict=True)
        ]
    )
    shares = thompson_propensities(stats, SamplerParams())[0]
    assert shares.sum() == pytest.approx(1.0)
    batch = Stats(*(np.repeat(part, 20_000, axis=0) for part in stats))
    decided = choose_batch("thompson", batch, np.full(20_000, 10**5), SamplerParams(floor=0.0), rng, propensity=False)
    found = np.bincount(decided.index, minlength=100) / 20_000
    assert np.abs(found - shares).max() < 0.015


def test_the_report_shows_each_capped_offers_spend_against_its_cap():
    from tools.report import page, ranking

    stats = [OfferStats(1000, 20, 10_000, 5e6), OfferStats(800, 10, 9_000, 9e6)]
    cap = {"kind": "conversions", "limit": 50.0, "tz": "Europe/Paris", "day": "2027-03-01", "spent": 20.0}
    cap |= {"share_of_day": 0.5, "price": 0.0, "reached": False}
    ranked = ranking.rank([3, 5], stats, np.random.default_rng(0), min_clicks=100)
    table = page._offer_table(ranked, {3: cap, 5: None})
    assert "today's spend / daily cap" in table and "20 / 50 conversions (40%) on 2027-03-01" in table
    assert "daily cap" not in page._offer_table(ranked, {3: None, 5: None})
    too_few = ranking.rank([3, 5], stats, np.random.default_rng(0), min_clicks=10_000)  # listed, not ranked
    assert "20 / 50 conversions (40%)" in page._offer_table(too_few, {3: cap, 5: None})
    assert "in flight" not in table
    flying = page._offer_table(ranked, {3: cap | {"in_flight": 3.5, "mean_delay_seconds": 3600.0}, 5: None})
    assert "20 / 50 conversions (40%) on 2027-03-01 (Europe/Paris), 3.5 more in flight, 50% of the day" in flying


def test_bench_context_columns_times_columns_that_are_computed_not_skipped(monkeypatch, capsys):
    """Every feature of the bench's candidates passes the evidence test, so its rows time the
    columns' work and not the early return of a feature that carries nothing."""
    from bench import context_columns

    rng = np.random.default_rng(0)
    offers = [context_columns.offer_effects(rng)[0] for _ in range(20)]
    for feature, value in (("geo", "geo-1"), ("device", "device-1"), ("os", "os-2"), ("source", "source-1")):
        shift, variance, _, has = context_model._feature_columns(offers, feature, value)
        assert has.all() and shift.any() and (variance > 0).all()
    monkeypatch.setattr("sys.argv", ["context_columns", "--candidates", "5", "--calls", "3"])
    context_columns.main()
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| a ") or "every" in line]
    assert len(rows) == 3
