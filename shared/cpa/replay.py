"""Logged CPA clicks replayed in time order, so every sampler can be evaluated offline on them: pure.

`/sample` logs the offer chosen, its candidates, the logging policy's probability of that choice,
the payouts and floor the request gave, and later the reward. What it does not log is what a policy
reads: the candidates' counters at decision time. They are reconstructed from the log itself:
before click i, each candidate has the clicks logged more than `lag` seconds before i's
`sampled_at` and the conversions whose reward arrived (`feedback_at`; `sampled_at` when absent)
by then. Approximations:
- the log starts from zero: clicks older than the window read (or deleted by the TTL) are missing,
  and so is greedy's global click count before the window;
- the service decides on cached summaries up to STATS_MAX_AGE_SECONDS (M) old, their age varying
  from decision to decision; the replay uses one `lag` for all (`make evaluate`: M / 2, which
  reproduced the logged Thompson probabilities best on a local run, see README);
- a click without a reward counts as a non-conversion (as the service's counters do);
- sampler parameters other than payouts and floor (epsilon, ucb_c, a Thompson prior) are not logged:
  each evaluated sampler runs with its defaults, the click's payouts and its floor (the service's
  default floor where none was given): "the same request, another sampler".

Then every sampler's probability of every candidate, per click, in batches (all clicks with the same
floor at once, candidate sets of any size padded and masked): exactly where the registry has the
sampler's probabilities (`thompson`, by numerical integration, as it logs), every other sampler from
its own core run REPLAYS times: each run gives one candidate and that candidate's exact probability;
the probability left over is shared evenly among the candidates no run chose. That is exact for the samplers whose
rarely chosen candidates all have the same probability (random, greedy, epsilon, ucb, klucb: the
floor's and epsilon's uniform share), checked in tests/test_replay.py.
"""

from dataclasses import dataclass

import numpy as np

from shared.cpa.policies import (
    DEFAULT_FLOOR,
    SAMPLERS,
    OfferStats,
    SamplerParams,
    Stats,
    choose_batch,
)
from shared.maths import estimators

REPLAYS = 16  # core runs per click for the samplers without an exact vector of probabilities
MODEL_CLICKS = 10.0  # the reward model's shrinkage: each offer starts with 10 clicks at the average
_FIELDS = list(OfferStats.__dataclass_fields__)  # clicks, conversions, reward, reward_sq, log sums


@dataclass(frozen=True)
class Log:
    """Logged clicks, oldest first; per click i its candidates[i] (offer ids, as offered)."""

    candidates: list[tuple[int, ...]]
    action: np.ndarray  # (n,) int: index of the chosen offer in candidates[i]
    probability: np.ndarray  # (n,) float: logged propensity (NaN when absent)
    reward: np.ndarray  # (n,) float cents, 0 without feedback
    sampled_at: np.ndarray  # (n,) float seconds
    rewarded_at: np.ndarray  # (n,) float seconds (sampled_at when unknown)
    payouts: list[tuple[float, ...] | None]  # per click: known payouts aligned with candidates, NaN unknown
    floor: np.ndarray  # (n,) float: the floor the request gave, NaN for the service's default

    def __len__(self) -> int:
        return len(self.candidates)

    def usable(self) -> np.ndarray:
        """Clicks whose logged probability can weigh them (0 < p <= 1)."""
        p = self.probability
        return np.isfinite(p) & (p > 0) & (p <= 1)


def decision_stats(log: Log, lag: float = 0.0) -> tuple[list[np.ndarray], np.ndarray]:
    """Per click, its candidates' counters before it ((K_i, 7) arrays, OfferStats' fields in
    order): the events more than `lag` seconds before it (the service's statistics are a cached
    summary, up to STATS_MAX_AGE_SECONDS old); and the number of clicks logged before it (greedy's
    warm-up)."""
    n = len(log)
    offers_of = np.array([c[a] for c, a in zip(log.candidates, log.action, strict=True)], dtype=np.int64)
    converted = log.reward > 0
    safe_reward = np.where(converted, log.reward, 1.0)
    log_reward = np.log(safe_reward)
    # events: one per click (+1 click when sampled), one per conversion (its sums when rewarded)
    event_offer = np.concatenate([offers_of, offers_of[converted]])
    event_time = np.concatenate([log.sampled_at, log.rewarded_at[converted]])
    amounts = np.zeros((n + int(converted.sum()), len(_FIELDS)))
    amounts[:n, 0] = 1.0
    r = log.reward[converted]
    lr = log_reward[converted]
    amounts[n:, 1:] = np.column_stack([np.ones_like(r), r, r * r, np.ones_like(r), lr, lr * lr])
    # queries: every (click, candidate) pair
    sizes = np.array([len(c) for c in log.candidates])
    pair_offer = np.fromiter((o for c in log.candidates for o in c), dtype=np.int64, count=int(sizes.sum()))
    pair_time = np.repeat(log.sampled_at - lag, sizes)
    pair_stats = np.zeros((len(pair_offer), len(_FIELDS)))
    event_order = np.lexsort((event_time, event_offer))
    event_offer, event_time, amounts = event_offer[event_order], event_time[event_order], amounts[event_order]
    chosen_offers, starts = np.unique(event_offer, return_index=True)
    ends = [*starts[1:], len(event_offer)]
    bounds = {int(o): (int(a), int(b)) for o, a, b in zip(chosen_offers, starts, ends, strict=True)}
    pair_order = np.argsort(pair_offer, kind="stable")
    pair_starts = np.flatnonzero(np.r_[True, np.diff(pair_offer[pair_order]) != 0])
    for group in np.split(pair_order, pair_starts[1:]):
        offer = int(pair_offer[group[0]])
        if offer not in bounds:
            continue  # never chosen in the log: zeros
        low, high = bounds[offer]
        cumulative = np.cumsum(amounts[low:high], axis=0)
        before = np.searchsorted(event_time[low:high], pair_time[group], side="left")
        pair_stats[group] = np.where(before[:, None] > 0, cumulative[np.maximum(before - 1, 0)], 0.0)
    per_click = np.split(pair_stats, np.cumsum(sizes)[:-1])
    clicks_before = np.searchsorted(np.sort(log.sampled_at), log.sampled_at, side="left")
    return per_click, clicks_before


def target_probabilities(
    sampler: str,
    stats: Stats,
    clicks_before: np.ndarray,
    params: SamplerParams,
    rng: np.random.Generator,
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """(B, K): the sampler's probability of choosing each candidate (see the module docstring); 0 in
    the padding outside `mask`."""
    exact = SAMPLERS[sampler].probabilities
    if exact is not None:
        return exact(stats, params, mask)
    batch, k = stats.clicks.shape
    valid = np.ones((batch, k), dtype=bool) if mask is None else mask
    known = np.full((batch, k), np.nan)
    rows = np.arange(batch)
    for _ in range(REPLAYS):
        decided = choose_batch(sampler, stats, clicks_before, params, rng, propensity=True, mask=mask)
        known[rows, decided.index] = decided.probability
    seen = np.isfinite(known)
    left = np.maximum(1.0 - np.where(seen, known, 0.0).sum(axis=1), 0.0)
    unseen = valid.sum(axis=1) - seen.sum(axis=1)
    share = np.where(unseen > 0, left / np.maximum(unseen, 1), 0.0)
    found = np.where(seen, known, np.where(valid, share[:, None], 0.0))
    return found / found.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class Replayed:
    """Per usable click (oldest first), padded to the largest candidate set with zeros."""

    index: np.ndarray  # (n,) positions of these clicks in the log
    action: np.ndarray  # (n,)
    probability: np.ndarray  # (n,) logged
    reward: np.ndarray  # (n,)
    targets: dict[str, np.ndarray]  # sampler -> (n, K_max)
    model: np.ndarray  # (n, K_max): the reward model of the doubly robust estimate


def replay(log: Log, samplers, rng: np.random.Generator, lag: float = 0.0) -> Replayed:
    """Every sampler's probabilities and the reward model on every usable click of the log."""
    per_click, clicks_before = decision_stats(log, lag)
    index = np.flatnonzero(log.usable())
    widest = max((len(log.candidates[i]) for i in index), default=1)
    targets = {name: np.zeros((len(index), widest)) for name in samplers}
    model = np.zeros((len(index), widest))
    # one batch per floor (a SamplerParams each); candidate sets of every size padded to the widest
    floors = np.where(np.isfinite(log.floor), log.floor, DEFAULT_FLOOR)
    global_rpc, global_cr = _global_rates(log)
    sizes = np.array([len(log.candidates[i]) for i in index], dtype=int)
    mask = np.arange(widest)[None, :] < sizes[:, None]
    for floor in np.unique(floors[index]):
        rows = np.flatnonzero(floors[index] == floor)
        clicks = index[rows]
        fields = np.zeros((len(rows), widest, len(_FIELDS)))
        for row, i in enumerate(clicks):
            fields[row, : len(per_click[i])] = per_click[i]
        stats = Stats(*np.moveaxis(fields, 2, 0))
        payouts = _payouts(log, clicks, widest)
        params = SamplerParams(floor=float(floor), payouts=payouts)
        ragged = None if mask[rows].all() else mask[rows]
        for name in samplers:
            targets[name][rows] = target_probabilities(name, stats, clicks_before[clicks], params, rng, ragged)
        model[rows] = np.where(mask[rows], _reward_model(stats, payouts, global_rpc[clicks], global_cr[clicks]), 0.0)
    return Replayed(index, log.action[index], log.probability[index], log.reward[index], targets, model)


def _payouts(log: Log, clicks: np.ndarray, widest: int) -> np.ndarray | None:
    """(B, widest) the clicks' known payouts, NaN where unknown or padding; None when none is known."""
    if all(log.payouts[i] is None for i in clicks):
        return None
    known = np.full((len(clicks), widest), np.nan)
    for row, i in enumerate(clicks):
        if log.payouts[i] is not None:
            known[row, : len(log.payouts[i])] = log.payouts[i]
    return known


def _global_rates(log: Log) -> tuple[np.ndarray, np.ndarray]:
    """Per click, the revenue per click and conversion rate of all the clicks before it."""
    clicks_before = np.searchsorted(np.sort(log.sampled_at), log.sampled_at, side="left")
    converted = log.reward > 0
    order = np.argsort(log.rewarded_at[converted])
    times = log.rewarded_at[converted][order]
    revenue = np.concatenate([[0.0], np.cumsum(log.reward[converted][order])])
    before = np.searchsorted(times, log.sampled_at, side="left")
    clicks = np.maximum(clicks_before, 1)
    return revenue[before] / clicks, before / clicks


def _reward_model(stats: Stats, payouts, global_rpc, global_cr) -> np.ndarray:
    """Each candidate's revenue per click from its counters before the click (so independent of
    the click's own reward), shrunk towards the log's average by MODEL_CLICKS clicks; conversion
    rate x payout where the payout is known."""
    clicks = stats.clicks + MODEL_CLICKS
    learned = (stats.reward + MODEL_CLICKS * global_rpc[:, None]) / clicks
    if payouts is None:
        return learned
    rate = (stats.conversions + MODEL_CLICKS * global_cr[:, None]) / clicks
    return np.where(np.isfinite(payouts) & (payouts > 0), rate * np.nan_to_num(payouts), learned)


@dataclass(frozen=True)
class PolicyEstimate:
    sampler: str
    ips: estimators.Estimate
    snips: estimators.Estimate
    dr: estimators.Estimate
    ess: float  # effective sample size of the importance weights: (sum w)^2 / sum w^2


def estimates(replayed: Replayed) -> list[PolicyEstimate]:
    """IPS, SNIPS and doubly robust revenue per click of every replayed sampler."""
    found = []
    a, p, r = replayed.action, replayed.probability, replayed.reward
    for name, target in replayed.targets.items():
        w = target[np.arange(len(a)), a] / p
        ess = float(w.sum() ** 2 / (w * w).sum()) if (w > 0).any() else 0.0
        found.append(
            PolicyEstimate(
                name,
                estimators.ips(a, p, r, target),
                estimators.snips(a, p, r, target) if (w > 0).any() else estimators.Estimate(*[float("nan")] * 3),
                estimators.doubly_robust(a, p, r, target, replayed.model),
                ess,
            )
        )
    return found


def logged_value(replayed: Replayed) -> estimators.Estimate:
    """The logging policy's own revenue per click on these clicks (weights of 1)."""
    a, p = replayed.action, replayed.probability
    target = np.zeros((len(a), int(a.max(initial=0)) + 1))
    target[np.arange(len(a)), a] = p
    return estimators.ips(a, p, replayed.reward, target)


def shadow_estimates(
    actions, probabilities, rewards, shadow_actions
) -> tuple[float, estimators.Estimate, estimators.Estimate]:
    """A shadow policy that drew its own choice beside the live one, independently given the same
    statistics: (agreement, IPS, SNIPS) of its revenue per click. IPS weight 1{shadow chose the
    logged offer} / logged probability: unbiased, as E[1{a_s = a} r / mu(a)] = sum_a pi_s(a) r(a)."""
    actions = np.asarray(actions)
    agree = (np.asarray(shadow_actions) == actions).astype(float)
    target = np.zeros((len(actions), int(actions.max(initial=0)) + 1))
    target[np.arange(len(actions)), actions] = agree
    nan = estimators.Estimate(float("nan"), float("nan"), float("nan"))
    snips = estimators.snips(actions, probabilities, rewards, target) if agree.any() else nan
    return float(agree.mean()), estimators.ips(actions, probabilities, rewards, target), snips
