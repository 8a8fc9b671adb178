"""The analysis of the decision log, in SQL that DuckDB and BigQuery both run unchanged (checked by
tests/unit/test_analytics_sql.py with sqlglot's BigQuery dialect, and run on DuckDB by the stack
tests): a tenant's decisions with their rewards, the offers' totals, the holdout's arms per day and
the splits the sample-ratio-mismatch check tests. The heavy lifting (joins, sums over millions of
rows) happens in the engine; Python gets one row per decision only where the off-policy replay needs
them (`clicks`, `episodes`), else one row per group.

The neutral subset: standard joins, CASE, COALESCE, SUM/COUNT/MAX, LN, CAST(... AS DATE), `@name`
parameters, no function one dialect lacks, no array indexing (lists are only selected).
"""

import datetime

# One row per decision: its reward (the sum of its outcomes: a CPA click's total, 1 for an accepted
# slate), when the last outcome came, and the offer a customer named.
_REWARDS = """
    SELECT decision_id, SUM(reward) AS reward, MAX(time) AS rewarded_at, MAX(accepted_offer) AS accepted_offer
    FROM {outcomes}
    WHERE tenant = @tenant AND product = @product
    GROUP BY decision_id
"""
_WINDOW = "d.tenant = @tenant AND d.product = @product AND d.time >= @since AND d.time < @until"

CLICKS = f"""
SELECT d.decision_id, d.time, d.offer_id, d.candidates, d.policy, d.served_by, d.holdout, d.probability,
       d.payouts, d.floor, d.shadow_policy, d.shadow_offer_id, d.shadow_probability, o.reward, o.rewarded_at
FROM {{decisions}} AS d
LEFT JOIN ({_REWARDS}) AS o ON o.decision_id = d.decision_id
WHERE {_WINDOW}
ORDER BY d.time NULLS LAST, d.decision_id NULLS LAST
"""

# The newest decisions first, for a read bounded by `LIMIT n` appended (`newest`).
NEWEST_CLICKS = CLICKS.replace(
    "ORDER BY d.time NULLS LAST, d.decision_id NULLS LAST",
    "ORDER BY d.time DESC NULLS LAST, d.decision_id DESC NULLS LAST",
)

EPISODES = f"""
SELECT d.decision_id, d.time, d.segment, d.policy, d.served_by, d.holdout, d.slate, d.inclusion,
       d.shadow_policy, d.shadow_slate, d.shadow_inclusion, o.reward, o.rewarded_at, o.accepted_offer
FROM {{decisions}} AS d
LEFT JOIN ({_REWARDS}) AS o ON o.decision_id = d.decision_id
WHERE {_WINDOW}
ORDER BY d.time NULLS LAST, d.decision_id NULLS LAST
"""

# The offers' learning totals over the whole log, as the service's counters hold them: the holdout
# left out, one conversion per click that earned anything, its payout plain and in logs.
OFFER_TOTALS = f"""
SELECT d.offer_id,
       COUNT(*) AS clicks,
       SUM(CASE WHEN o.reward > 0 THEN 1 ELSE 0 END) AS conversions,
       SUM(CASE WHEN o.reward > 0 THEN o.reward ELSE 0 END) AS reward,
       SUM(CASE WHEN o.reward > 0 THEN o.reward * o.reward ELSE 0 END) AS reward_sq,
       SUM(LN(CASE WHEN o.reward > 0 THEN o.reward ELSE 1 END)) AS log_reward,
       SUM(LN(CASE WHEN o.reward > 0 THEN o.reward ELSE 1 END) * LN(CASE WHEN o.reward > 0 THEN o.reward ELSE 1 END))
           AS log_reward_sq
FROM {{decisions}} AS d
LEFT JOIN ({_REWARDS}) AS o ON o.decision_id = d.decision_id
WHERE d.tenant = @tenant AND d.product = @product AND NOT d.holdout
GROUP BY d.offer_id
ORDER BY clicks DESC NULLS LAST, d.offer_id NULLS LAST
"""

# Per day (UTC) and arm: decisions, their rewards' sum and sum of squares, and how many have one.
ARMS_BY_DAY = f"""
SELECT CAST(d.time AS DATE) AS day, d.holdout,
       COUNT(*) AS n,
       SUM(COALESCE(o.reward, 0)) AS total,
       SUM(COALESCE(o.reward, 0) * COALESCE(o.reward, 0)) AS total_sq,
       SUM(CASE WHEN o.reward > 0 THEN 1 ELSE 0 END) AS successes
FROM {{decisions}} AS d
LEFT JOIN ({_REWARDS}) AS o ON o.decision_id = d.decision_id
WHERE {_WINDOW}
GROUP BY CAST(d.time AS DATE), d.holdout
ORDER BY day NULLS LAST, d.holdout NULLS LAST
"""

# Per day: decisions, those held out, and how many the configured shares expected (their sum).
SPLITS_BY_DAY = f"""
SELECT CAST(d.time AS DATE) AS day,
       COUNT(*) AS n,
       SUM(CASE WHEN d.holdout THEN 1 ELSE 0 END) AS held_out,
       SUM(COALESCE(d.holdout_share, 0)) AS expected_held_out
FROM {{decisions}} AS d
WHERE {_WINDOW}
GROUP BY CAST(d.time AS DATE)
ORDER BY day NULLS LAST
"""

# The window's totals per product: decisions, those with a reward, the rewards' sum (revenue of the
# clicks, accepted episodes), those that earned anything (conversions, acceptances).
TOTALS = f"""
SELECT COUNT(*) AS decisions,
       SUM(CASE WHEN o.reward IS NULL THEN 0 ELSE 1 END) AS rewarded,
       SUM(COALESCE(o.reward, 0)) AS reward,
       SUM(CASE WHEN o.reward > 0 THEN 1 ELSE 0 END) AS successes
FROM {{decisions}} AS d
LEFT JOIN ({_REWARDS}) AS o ON o.decision_id = d.decision_id
WHERE {_WINDOW}
"""

ALL = {
    "clicks": CLICKS,
    "newest_clicks": NEWEST_CLICKS + "LIMIT 100",
    "episodes": EPISODES,
    "newest_episodes": None,  # set below
    "totals": TOTALS,
    "offer_totals": OFFER_TOTALS,
    "arms_by_day": ARMS_BY_DAY,
    "splits_by_day": SPLITS_BY_DAY,
}

NEWEST_EPISODES = EPISODES.replace(
    "ORDER BY d.time NULLS LAST, d.decision_id NULLS LAST",
    "ORDER BY d.time DESC NULLS LAST, d.decision_id DESC NULLS LAST",
)
ALL["newest_episodes"] = NEWEST_EPISODES + "LIMIT 100"

FAR_FUTURE = datetime.datetime(9999, 1, 1, tzinfo=datetime.UTC)


def window(tenant: str, product: str, since: datetime.datetime, until: datetime.datetime | None = None) -> dict:
    return {"tenant": tenant, "product": product, "since": since, "until": until or FAR_FUTURE}


def _bounded(newest: str, oldest_first: str, limit: int | None) -> str:
    return oldest_first if limit is None else f"{newest}LIMIT {int(limit)}"


def clicks(warehouse, tenant: str, since, until=None, limit: int | None = None) -> list[dict]:
    """The window's CPA decisions with their rewards, oldest first; the newest `limit` when given."""
    found = warehouse.rows(_bounded(NEWEST_CLICKS, CLICKS, limit), **window(tenant, "cpa", since, until))
    return found if limit is None else found[::-1]


def episodes(warehouse, tenant: str, since, until=None, limit: int | None = None) -> list[dict]:
    """The window's customer decisions with their rewards, oldest first; the newest `limit` when given."""
    found = warehouse.rows(_bounded(NEWEST_EPISODES, EPISODES, limit), **window(tenant, "customer", since, until))
    return found if limit is None else found[::-1]


def offer_totals(warehouse, tenant: str) -> list[dict]:
    return warehouse.rows(OFFER_TOTALS, tenant=tenant, product="cpa")


def arms_by_day(warehouse, tenant: str, product: str, since, until=None) -> list[dict]:
    return warehouse.rows(ARMS_BY_DAY, **window(tenant, product, since, until))


def splits_by_day(warehouse, tenant: str, product: str, since, until=None) -> list[dict]:
    return warehouse.rows(SPLITS_BY_DAY, **window(tenant, product, since, until))
