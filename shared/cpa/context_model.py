"""The contextual sampler's model of a context's effect on an offer's conversion rate. Pure, numpy.

For one offer and one feature (geo, device, os, source) the counts per value are clicks n_v and
conversions c_v. The offer converts at r = sum c / sum n over the clicks that gave the feature; value
v multiplies that rate by theta_v ~ Gamma(kappa, kappa) a priori (mean 1), so with
conversions ~ Poisson(n_v r theta_v) the posterior is Gamma(c_v + kappa, n_v r + kappa):

- ln of its mean, ln((c_v + kappa) / (n_v r + kappa)), shifts the offer's ln(rate) in context v;
- trigamma(c_v + kappa) is the variance that shift adds.

A value never seen (a new source) shifts nothing and adds trigamma(kappa): it starts at the offer's
average, as uncertain as the offers' values differ. kappa, the shrinkage, is estimated per feature
over the click's candidates (a hierarchical prior: how much countries, devices or sources differ is
the feature's, while each offer's effects are its own): the values' conversions vary by
Var = e + e^2 / kappa around their expectations e = n_v r (Poisson noise plus the effects' spread),
so by the method of moments 1 / kappa = sum((c_v - e_v)^2 - e_v) / sum(e_v^2), summed over the
candidates' values, kept within [MIN_SPREAD, MAX_SPREAD]. Only the excess beyond EVIDENCE_Z of its
standard errors with no effect, sqrt(sum(e_v + 2 e_v^2)), counts: without it, chance excess on a
feature that carries nothing reads as an effect, and the sampler chases it. While the candidates'
values do not differ beyond that test (the spread at MIN_SPREAD), and for an offer until it has
MIN_CONVERSIONS conversions with the feature given, the feature changes nothing: an offer whose
context shows no evidence is decided as without context.

Pooling (session 21): each offer estimated its own kappa before, and a contender's 200 sources at a
few conversions each rarely passed the test on their own, so its source effects went unused. Pooled
over the candidates the test passes once the feature differs for the offers together (training
seeds of bench.context_bench, `contextual` +2.22 +- 0.91 points, `E1-context` -0.02 +- 1.10;
bench/README.md). A candidate set of one offer is that offer's own estimate, as before.

EVIDENCE_Z and MIN_SPREAD (was 1e-3, no penalty) were chosen among four pairs on the benchmark's
training seeds (`python -m bench.context_bench --first-seed 1000 --seeds 40`; docs: Context and caps),
never on the published seeds; EVIDENCE_Z raised from 2 to 3 on the same seeds once the default
sampler had become plain Thompson (bench/README.md, "Session 13").

Features combine multiplicatively (shifts and variances add): a naive-Bayes model, exact when the
features' effects on an offer are independent; correlated features (sources of one country) count
their shared effect twice.
"""

import array
import sys
import threading
from dataclasses import dataclass, field

import numpy as np

from shared.cpa.policies.contextual import Adjustments
from shared.platform import remembered

MIN_CONVERSIONS = 10
MIN_SPREAD = 1e-4  # effects of about +- 1 %: the least spread assumed (a weight of 10,000 conversions)
MAX_SPREAD = 1.0  # effects of about a factor e either way
EVIDENCE_Z = 3.0  # the excess over Poisson noise counts past this many of its standard errors


def trigamma(x: np.ndarray) -> np.ndarray:
    """psi'(x) for x > 0: psi'(x) = sum over i < 6 of 1 / (x + i)^2, plus psi'(x + 6) by its asymptotic
    series (error < 1e-8 from 6 on). Exact at any x, so no step depends on x (a few array operations)."""
    x = np.asarray(x, dtype=float)
    steps = x[..., None] + np.arange(6.0)
    inv = 1.0 / (x + 6.0)
    inv2 = inv * inv
    series = inv + inv2 / 2.0 + inv * inv2 * (1.0 / 6.0 - inv2 * (1.0 / 30.0 - inv2 / 42.0))
    return (1.0 / (steps * steps)).sum(axis=-1) + series


def spread_terms(clicks: np.ndarray, conversions: np.ndarray) -> tuple[np.ndarray, ...]:
    """Vectorised over leading axes, values on the last: the conversions expected at the offer's rate
    (shaped as the counts), then per offer and feature (values summed, kept as an axis of 1) the
    spread estimate's three terms, sum((c - e)^2 - e), sum(e^2) and sum(e + 2 e^2), the conversions
    and ln of the rate."""
    clicks = np.asarray(clicks, dtype=float)
    conversions = np.asarray(conversions, dtype=float)
    total = conversions.sum(axis=-1, keepdims=True)
    rate = total / np.maximum(clicks.sum(axis=-1, keepdims=True), 1.0)
    expected = clicks * rate
    excess = ((conversions - expected) ** 2 - expected).sum(axis=-1, keepdims=True)
    squares = (expected * expected).sum(axis=-1, keepdims=True)
    noise = (expected + 2.0 * expected * expected).sum(axis=-1, keepdims=True)
    with np.errstate(divide="ignore"):
        return expected, excess, squares, noise, total, np.log(rate)


def spread_of(excess, squares, noise):
    """1 / kappa from the terms summed over the offers that share it: the excess beyond EVIDENCE_Z
    of its standard errors, over sum(e^2), within [MIN_SPREAD, MAX_SPREAD]."""
    excess = np.asarray(excess, dtype=float) - EVIDENCE_Z * np.sqrt(noise)
    return np.clip(excess / np.maximum(squares, 1e-12), MIN_SPREAD, MAX_SPREAD)


def value_effects(conversions, expected, spread) -> tuple[np.ndarray, np.ndarray]:
    """A seen value's shift of ln(rate) and its variance, Gamma(c + kappa, e + kappa)."""
    kappa = 1.0 / np.asarray(spread, dtype=float)
    a = np.asarray(conversions, dtype=float) + kappa
    return np.log(a / (expected + kappa)), trigamma(a)


def effect_tables(clicks: np.ndarray, conversions: np.ndarray) -> tuple[np.ndarray, ...]:
    """Counts shaped (..., offers, values), the offers a candidate set: (shift, variance) per value
    shaped as the counts, the unseen value's variance and ln of the base rate shaped (..., offers),
    the spread pooled over the offers. Shifts and variances 0, and the base NaN, where the feature
    knows too little. What `adjustments` computes for such a candidate set, vectorised."""
    conversions = np.asarray(conversions, dtype=float)
    expected, excess, squares, noise, total, log_rate = spread_terms(clicks, conversions)
    excess, squares, noise = (x.sum(axis=-2, keepdims=True) for x in (excess, squares, noise))
    spread = spread_of(excess, squares, noise)
    shift, variance = value_effects(conversions, expected, spread)
    known = (total >= MIN_CONVERSIONS) & (spread > MIN_SPREAD)
    unseen = np.where(known, trigamma(1.0 / spread), 0.0)[..., 0]
    base = np.where(known, log_rate, np.nan)[..., 0]
    return np.where(known, shift, 0.0), np.where(known, variance, 0.0), unseen, base


@dataclass(frozen=True)
class FeatureEffects:
    """One offer's counts of one feature, as a candidate set pools them: each value's conversions and
    the conversions expected at the offer's rate (`counted`, empty until the offer has
    MIN_CONVERSIONS conversions with the feature given), and the offer's terms of the spread estimate.

    Compact, since an instance holds one per offer and feature and a source feature has thousands of
    values: a value's row is found in `rows`, whose keys are interned (one string per value for all
    the offers an instance holds) and whose row numbers are shared int objects, and the two numbers
    of row i are counted[2i] and counted[2i + 1], unboxed (bench/capacity_context.py prints the
    bytes per offer)."""

    rows: dict = field(default_factory=dict)  # value -> its row in `counted`
    counted: array.array = field(default_factory=lambda: array.array("d"))
    excess: float = 0.0
    squares: float = 0.0
    noise: float = 0.0
    log_rate: float = float("nan")  # ln of the offer's rate over the clicks these counts hold

    def of(self, value: str) -> tuple[float, float] | None:
        """The value's (conversions, conversions expected); None when the offer kept none for it."""
        row = self.rows.get(value)
        if row is None:
            return None
        return self.counted[2 * row], self.counted[2 * row + 1]


NO_EFFECT = FeatureEffects()


def feature_effects(counts: dict) -> FeatureEffects:
    """An offer's counts of one feature, from its folded summary: value -> [clicks, conversions]."""
    if not counts:
        return NO_EFFECT
    values = list(counts)
    table = np.array([counts[value][:2] for value in values], dtype=float)
    expected, excess, squares, noise, total, log_rate = spread_terms(table[:, 0], table[:, 1])
    if float(total[0]) < MIN_CONVERSIONS:  # its values are never read, only its terms pooled: kept small
        return FeatureEffects(excess=float(excess[0]), squares=float(squares[0]), noise=float(noise[0]))
    counted = array.array("d", np.column_stack((table[:, 1], expected)).tobytes())
    rows = dict(zip(map(sys.intern, values), _row_numbers(len(values)), strict=False))  # values: a map's keys
    return FeatureEffects(rows, counted, float(excess[0]), float(squares[0]), float(noise[0]), float(log_rate[0]))


_numbers: list[int] = []
_numbers_lock = threading.Lock()


def _row_numbers(n: int) -> list[int]:
    """0 .. n - 1 as one int object each, shared by every table (an int past 256 is 28 bytes)."""
    if len(_numbers) < n:
        with _numbers_lock:
            _numbers.extend(range(len(_numbers), n))
    return _numbers


# by the effects list the context cache hands out and the feature (its pooled part), and its value
_pooled = remembered.ByIdentity(256)
_columns = remembered.ByIdentity(1024)


def adjustments(context: dict[str, str], offers: list[dict[str, FeatureEffects] | None]) -> Adjustments | None:
    """The click's adjustments over its candidates (a batch of one); None when the context says
    nothing about any candidate (no context, or no candidate has learned from one yet). Sums over
    the features in the context's order, each feature's column over the candidates at once."""
    if not context:
        return None
    k = len(offers)
    shift, variance, total, counted = np.zeros(k), np.zeros(k), np.zeros(k), np.zeros(k)
    for feature, value in context.items():
        moved, spread, log_rate, has = _feature_columns(offers, feature, value)
        shift, variance, total, counted = shift + moved, variance + spread, total + log_rate, counted + has
    if not (shift.any() or variance.any()):
        return None
    with np.errstate(invalid="ignore"):
        base = np.where(counted > 0, total / counted, np.nan)
    return Adjustments(shift[None, :], variance[None, :], None, base[None, :])


def _feature_columns(offers: list, feature: str, value: str) -> tuple[np.ndarray, ...]:
    """Over the candidates, for one feature's value: the shift of ln rate, its variance, ln of the
    counts' base rate (0 where the feature has no effect) and whether it has one. Remembered by the
    effects list itself: the context cache hands a candidate set the same list until one of its
    offers is refreshed, and popular values come again, so a steady click takes no step per
    candidate here. A value not remembered (thousands of sources) costs one look-up per candidate:
    what does not depend on the value is remembered per feature (`_Pooled`). Read-only."""
    return _columns.get(offers, (feature, value), lambda: _columns_of(offers, feature, value))


@dataclass(frozen=True)
class _Pooled:
    """One feature over a candidate set: the spread pooled over the candidates, (candidate, its rows,
    its counted) for each candidate with a table, and per candidate whether it has one and ln of its
    base rate (0 without)."""

    spread: float
    tables: list
    has: np.ndarray
    log_rate: np.ndarray
    unseen: float  # the variance a value the offer never saw adds


def _pooled_of(offers: list, feature: str) -> _Pooled | None:
    """None when the candidates' values do not differ beyond chance. One pass over the candidates."""
    k = len(offers)
    tables, has, log_rate = [], [0.0] * k, [0.0] * k
    excess, squares, noise = 0.0, 0.0, 0.0
    for j, features in enumerate(offers):
        effect = features.get(feature) if features else None
        if effect is None:
            continue
        excess, squares, noise = excess + effect.excess, squares + effect.squares, noise + effect.noise
        if effect.rows:
            tables.append((j, effect.rows, effect.counted))
            has[j], log_rate[j] = 1.0, effect.log_rate
    spread = float(spread_of(excess, squares, noise))
    if spread <= MIN_SPREAD:  # also where no candidate gave the feature: every term 0
        return None
    return _Pooled(spread, tables, np.array(has), np.array(log_rate), float(trigamma(1.0 / spread)))


def _columns_of(offers: list, feature: str, value: str) -> tuple[np.ndarray, ...]:
    pooled = _pooled.get(offers, feature, lambda: _pooled_of(offers, feature))
    if pooled is None:
        columns = np.zeros((4, len(offers)))
    else:
        seen, conversions, expected = [], [], []  # over the candidates that saw the value: often none
        for j, rows, counted in pooled.tables:
            row = rows.get(value)
            if row is not None:
                seen.append(j)
                conversions.append(counted[2 * row])
                expected.append(counted[2 * row + 1])
        columns = np.array((np.zeros(len(offers)), pooled.unseen * pooled.has, pooled.log_rate, pooled.has))
        if seen:
            columns[0, seen], columns[1, seen] = value_effects(np.array(conversions), np.array(expected), pooled.spread)
    columns.setflags(write=False)
    return tuple(columns)
