"""Per-offer daily caps and their pacing. Pure (the store passes in the clock and the day's spend).

A cap is set per offer in the tenant's `config/serving`, `cpa.caps` (parsed by
shared/cpa/serving.py `parse_caps`):

    {"cpa": {"caps": {"42": {"conversions": 100, "tz": "Europe/Paris"}, "7": {"cents": 250000}}}}

- conversions or cents: what the advertiser buys per day (exactly one of the two, above 0);
- tz: the IANA time zone whose midnight starts the offer's day (default UTC).
An entry that is not valid is ignored and logged; the others still apply.

Spend is counted from /feedback, in the same commit that applies the reward event once (the offer's
counter shard gains `day.{YYYY-MM-DD}.conversions` and `.cents`, the day in the offer's time zone),
so a replayed event never counts twice.

Pacing (a shadow price per capped offer, as the dual of the day's linear programme): the decision
values a capped offer at (1 - price) x its revenue per click, so the offer keeps winning the clicks
where its advantage over the alternatives is largest and cedes the others first. The price rises
while the day's spend runs ahead of the cap's share of the day, PRICE_GAIN per unit of overspend
ratio, and is 0 while it is behind. The last CLOSING share of a cap is spent at a rising price
whatever the hour (0 at 98 % of the cap, MAX_PRICE at 100 %): the spend a decision sees lags the
true one (the statistics cache, up to STATS_MAX_AGE_SECONDS), so an offer running at full speed
when it reaches its cap would overshoot by what it converts within that lag. A cap reached takes
the offer out of the candidates unless nothing else is eligible.

In flight (conversions already clicked, whose postback has not come): spend counts a conversion
when its /feedback arrives, so pacing prices a cap on the spend expected, counted + in flight. The
in-flight spend is the offer's recent click rate x its conversions (or cents) per click x its mean
postback delay (Little's law), times the share of delays that end before the day does (exponential
delays). The rate is an exponential average over RATE_SECONDS, kept as one summed counter field per
day (`clicks_weighted`, each click adding exp(its seconds since the day's midnight / RATE_SECONDS));
the delay is summed per conversion (`delay_seconds`) in the feedback's spend write. With no
conversion today or yesterday there is no delay measured: in flight 0, the price counted spend alone.
"""

import datetime
import math
import zoneinfo
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

KINDS = ("conversions", "cents")
DAY_FIELD = "day"  # the counter map of spend per day: day.{YYYY-MM-DD}.{conversions, cents}
PRICE_GAIN = 20.0  # price per unit of spend above the day's schedule (1.05 x schedule: price 1)
MAX_PRICE = 0.999  # a paced offer's value is at least 0.1 % of its own
# The schedule allows this share of the cap ahead of the day's elapsed share (quantised spend early
# in the day: one conversion is not a runaway).
SLACK = 0.01
CLOSING = 0.02  # chosen before the capped benchmark was run with it: twice the 1 % overshoot allowed
MAX_CAP = 1e12
# The click rate's averaging time: about a typical postback delay. Shorter, the estimate falls as
# soon as pacing throttles the offer, while its conversions are still coming (the price flickers
# back down); a whole day's average would lag a throttle by hours. docs/context-and-caps.md#in-flight
RATE_SECONDS = 3600.0
# Near the cap, spend in flight is priced this many standard deviations above its mean: its
# conversions arrive as a Poisson count, so a small cap's vary by a per cent or more of the cap
# (tried on the training seeds: bench/README.md)
IN_FLIGHT_SD = 2.0
DELAY = "delay_seconds"  # day.{day}.delay_seconds: the day's conversions' summed postback delays
WEIGHTED_CLICKS = "clicks_weighted"  # day.{day}.clicks_weighted: sum of exp(seconds after midnight / RATE_SECONDS)


class Cap(NamedTuple):
    kind: str  # "conversions" or "cents"
    limit: float
    tz: str = "UTC"


@dataclass(frozen=True)
class CapState:
    """One capped candidate at decision time."""

    spent: float
    limit: float
    day_fraction: float  # share of the offer's day elapsed, in [0, 1)
    in_flight: float = 0.0  # spend expected to arrive today from clicks already taken
    margin: float = 0.0  # IN_FLIGHT_SD standard deviations of it (the closing price's)
    mean_delay: float = 0.0  # seconds from click to postback (0: none measured)

    @property
    def reached(self) -> bool:
        """Counted spend only: conversions in flight may still fail to arrive."""
        return self.spent >= self.limit

    @property
    def price(self) -> float:
        """The shadow price: the share of the offer's value that pacing takes off."""
        expected = np.float64(self.spent + self.in_flight)
        return float(prices(expected, np.float64(self.limit), self.day_fraction, self.margin))


def prices(spent: np.ndarray, limit: np.ndarray, day_fraction: float, margin=0.0) -> np.ndarray:
    """The shadow prices of caps (elementwise; an infinite limit is uncapped: price 0): the larger of
    the schedule's (spend ahead of the day) and the closing one (spend near the cap). `spent` is the
    spend expected, counted + in flight; the closing price adds `margin` to it (the in-flight spend's
    uncertainty: a bound on what may still land matters near the cap, not against the schedule)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        schedule = limit * min(1.0, day_fraction + SLACK)
        ahead = np.where(schedule > 0, spent / schedule - 1.0, np.inf)
        closing = ((spent + margin) / limit - (1.0 - CLOSING)) / CLOSING
    paced = np.maximum(PRICE_GAIN * ahead, MAX_PRICE * closing)
    return np.where(np.isfinite(limit), np.clip(paced, 0.0, MAX_PRICE), 0.0)


def parse_section(caps, problems: list[str]) -> dict[int, Cap]:
    """`cpa.caps` of a configuration document: offer id (a string key) -> Cap; invalid entries noted."""
    if caps is None:
        return {}
    if not isinstance(caps, dict):
        problems.append("cpa.caps: not an object of offer id -> cap")
        return {}
    found = {}
    for key, entry in caps.items():
        name = f"cpa.caps.{str(key)[:40]}"
        offer = str(key).strip()
        if not offer.isdigit() or int(offer) >= 2**63:
            problems.append(f"{name}: the key is not an offer id")
            continue
        if not isinstance(entry, dict):
            problems.append(f"{name}: not an object")
            continue
        kinds = [kind for kind in KINDS if entry.get(kind) is not None]
        if len(kinds) != 1:
            problems.append(f"{name}: give exactly one of conversions or cents")
            continue
        limit = entry[kinds[0]]
        if isinstance(limit, bool) or not isinstance(limit, (int, float)) or not 0 < limit <= MAX_CAP:
            problems.append(f"{name}.{kinds[0]}: {str(limit)[:40]!r} is not a number above 0")
            continue
        tz = entry.get("tz", "UTC")
        if not valid_zone(tz):
            problems.append(f"{name}.tz: {str(tz)[:60]!r} is not an IANA time zone")
            continue
        found[int(offer)] = Cap(kinds[0], float(limit), tz)
    return found


def valid_zone(name) -> bool:
    if not isinstance(name, str) or not name or len(name) > 64:
        return False
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


def local_time(now: datetime.datetime, tz: str) -> datetime.datetime:
    return now.astimezone(zoneinfo.ZoneInfo(tz))


class LocalDay(NamedTuple):
    """The offer's calendar day at an instant, in its time zone: the counter's keys of today and
    yesterday, and the epoch seconds of yesterday's, today's and tomorrow's midnights."""

    key: str
    yesterday: str
    midnights: tuple[float, float, float]

    def fraction(self, seconds: float) -> float:
        """The share of the day elapsed at `seconds` (epoch), in real seconds: a day of 23 or 25
        hours counted as it is."""
        _, midnight, tomorrow = self.midnights
        return min(max((seconds - midnight) / (tomorrow - midnight), 0.0), 1.0 - 1e-9)


def local_day(now: datetime.datetime, tz: str = "UTC") -> LocalDay:
    local = local_time(now, tz)
    date = local.date()
    midnights = tuple(
        datetime.datetime.combine(date + datetime.timedelta(days=back), datetime.time(), local.tzinfo)
        .astimezone(datetime.UTC)
        .timestamp()
        for back in (-1, 0, 1)
    )
    return LocalDay(date.isoformat(), (date - datetime.timedelta(days=1)).isoformat(), midnights)


def day_of(now: datetime.datetime, tz: str = "UTC") -> str:
    """The offer's day (its time zone's calendar date) at `now`, as the counter's key."""
    return local_time(now, tz).date().isoformat()


def day_fraction(now: datetime.datetime, tz: str = "UTC") -> float:
    """The share of the offer's day elapsed at `now` (LocalDay.fraction)."""
    return local_day(now, tz).fraction(now.timestamp())


def spend_fields(day: str, conversions: float, cents: float, delay: float = 0.0) -> dict[str, float]:
    """The counter increments (dotted paths) that add one reward event's spend to its day, with the
    postback delay (seconds since the click) of each conversion it counts."""
    fields = {f"{DAY_FIELD}.{day}.conversions": conversions, f"{DAY_FIELD}.{day}.cents": cents}
    if conversions > 0:
        fields[f"{DAY_FIELD}.{day}.{DELAY}"] = max(delay, 0.0) * conversions
    return fields


def click_fields(cap: Cap, now: datetime.datetime) -> dict[str, float]:
    """The increment a click on a capped offer adds to its day's recent-rate sum (rate_of)."""
    today = local_day(now, cap.tz)
    since_midnight = now.timestamp() - today.midnights[1]
    return {f"{DAY_FIELD}.{today.key}.{WEIGHTED_CLICKS}": math.exp(since_midnight / RATE_SECONDS)}


def _of_day(totals: dict, day: str, name: str) -> float:
    return float(((totals.get(DAY_FIELD) or {}).get(day) or {}).get(name, 0.0))


def spent(totals: dict, day: str, kind: str) -> float:
    """The day's spend of the cap's kind in an offer counter's totals."""
    return _of_day(totals, day, kind)


def rate_of(weighted_today, weighted_yesterday, since_today, since_yesterday):
    """Clicks per second averaged exponentially over RATE_SECONDS, from the days' weighted sums and
    the seconds since each day's midnight (elementwise)."""
    return (
        weighted_today * np.exp(-np.asarray(since_today) / RATE_SECONDS)
        + weighted_yesterday * np.exp(-np.asarray(since_yesterday) / RATE_SECONDS)
    ) / RATE_SECONDS


def in_flight(rate, per_click, mean_delay, seconds_left):
    """Spend still on its way that lands before the day's end: rate x spend per click x mean delay
    (Little's law), times the share of exponential delays shorter than the time left (elementwise;
    a delay of 0, none measured, gives 0)."""
    delay = np.asarray(mean_delay, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        landing = np.where(delay > 0, -np.expm1(-np.asarray(seconds_left) / delay), 0.0)
    return rate * per_click * delay * landing


def margin(flying, flying_conversions):
    """IN_FLIGHT_SD standard deviations of spend in flight whose conversions are a Poisson count of
    mean `flying_conversions` (elementwise; 0 with nothing in flight)."""
    conversions = np.asarray(flying_conversions, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(conversions > 0, IN_FLIGHT_SD * flying / np.sqrt(conversions), 0.0)


def mean_delay(totals: dict, today: str, yesterday: str) -> float:
    """Seconds from click to postback over today's and yesterday's conversions (yesterday's alone
    before today has one; 0 when neither day has one: no delay measured)."""
    conversions = _of_day(totals, today, "conversions") + _of_day(totals, yesterday, "conversions")
    delays = _of_day(totals, today, DELAY) + _of_day(totals, yesterday, DELAY)
    return delays / conversions if conversions > 0 else 0.0


def per_click(totals: dict, kind: str) -> float:
    """The offer's conversions (or cents) per click, from its learning totals."""
    clicks = float(totals.get("clicks", 0))
    return float(totals.get("conversions" if kind == "conversions" else "reward", 0)) / clicks if clicks else 0.0


def state_of(cap: Cap, totals: dict, now: datetime.datetime) -> CapState:
    today = local_day(now, cap.tz)
    yesterday_at, midnight, tomorrow_at = today.midnights
    seconds = now.timestamp()
    delay = mean_delay(totals, today.key, today.yesterday)
    rate = rate_of(
        _of_day(totals, today.key, WEIGHTED_CLICKS),
        _of_day(totals, today.yesterday, WEIGHTED_CLICKS),
        seconds - midnight,
        seconds - yesterday_at,
    )
    left = tomorrow_at - seconds
    flying = float(in_flight(rate, per_click(totals, cap.kind), delay, left))
    sd = float(margin(flying, in_flight(rate, per_click(totals, "conversions"), delay, left)))
    return CapState(spent(totals, today.key, cap.kind), cap.limit, today.fraction(seconds), flying, sd, delay)


def old_days(day: str, kept: int = 2, forgotten: int = 7) -> list[str]:
    """The dotted day fields a written shard drops: the `forgotten` days before the `kept` latest
    (today and yesterday), so a shard's day map stays a few entries long."""
    date = datetime.date.fromisoformat(day)
    return [f"{DAY_FIELD}.{date - datetime.timedelta(days=back)}" for back in range(kept, kept + forgotten)]
