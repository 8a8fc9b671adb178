"""The benchmark's environments E1-E6 (E7, the contextual slate, lives in bench/slates.py).

Every environment is a per-seed table of offers' conversion rates and mean payouts, one row per
epoch (one epoch unless the environment drifts), plus how a conversion's payout and delay are
drawn. Values are revenue per click, in cents (E2 and E3 pay 1 per conversion, so their regret is
counted in conversions, as the Lai-Robbins bound is).
"""

from dataclasses import dataclass, field

import numpy as np

# E1 CPA-10: rates 0.5-8 %, fixed payouts 200-8,000 cents; the best offer is the rarest converter
# (0.5 % x 8,000 = 40 cents a click); three offers reach 80 % of it (32 cents).
CPA10_RATES = np.array([0.08, 0.06, 0.05, 0.04, 0.03, 0.025, 0.02, 0.015, 0.01, 0.005])
CPA10_PAYOUTS = np.array([200, 400, 560, 800, 1000, 1200, 1600, 2000, 3200, 8000], dtype=float)

# E2: the canonical low-rate Bernoulli instance.
CANONICAL_RATES = np.array([0.10, 0.05, 0.05, 0.05, 0.02, 0.02, 0.02, 0.01, 0.01, 0.01])

# E3: K = 100 rates from a Beta(2, 48) prior (mean 4 %), redrawn per seed.
MANY_K = 100
MANY_PRIOR = (2.0, 48.0)


@dataclass(frozen=True)
class Env:
    key: str
    number: int  # salt of the paired random numbers
    title: str
    horizon: int
    k: int
    unit: str = "cents"
    lognormal_sigma: float = 0.0  # payout = mean payout * exp(sigma Z - sigma^2 / 2)
    changes: int = 0  # the best offer changes this many times, at equal intervals
    delay_mean: float = 0.0  # conversions arrive after a geometric delay (in clicks) of this mean
    shown: int = 0  # each click's candidates: this many of the K offers drawn at random (0: all)
    joins: tuple = ()  # per offer (table order), the fraction of the horizon at which it joins
    payouts_known: bool = False  # the policy is given each offer's mean payout (SamplerParams.payouts)
    detail: str = field(default="", compare=False)

    def epochs(self) -> int:
        return self.changes + 1

    def epoch_of(self, step: int) -> int:
        return min(step * self.epochs() // self.horizon, self.changes)

    def instance(self, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """rates and mean payouts of the K offers, shaped (epochs, K), for one seed."""
        rng = np.random.default_rng([self.number, seed, 7])
        if self.key == "E2":
            rates, payouts = CANONICAL_RATES.copy(), np.ones(self.k)
        elif self.key == "E3":
            rates, payouts = rng.beta(*MANY_PRIOR, size=self.k), np.ones(self.k)
        elif self.k == 2 * len(CPA10_RATES):
            # CPA-20: E1's offers twice, each rate scaled by a per-seed factor exp(0.3 Z)
            rates = np.tile(CPA10_RATES, 2) * np.exp(0.3 * rng.standard_normal(self.k))
            payouts = np.tile(CPA10_PAYOUTS, 2)
        else:
            rates, payouts = CPA10_RATES.copy(), CPA10_PAYOUTS.copy()
        rates_by_epoch, payouts_by_epoch = [rates], [payouts]
        for _ in range(self.changes):
            # Re-deal the (rate, payout) pairs among the offers so that another offer is best.
            previous_best = int(np.argmax(rates_by_epoch[-1] * payouts_by_epoch[-1]))
            while True:
                order = rng.permutation(self.k)
                if order[int(np.argmax(rates * payouts))] != previous_best:
                    break
            new_rates, new_payouts = np.empty(self.k), np.empty(self.k)
            new_rates[order], new_payouts[order] = rates, payouts
            rates_by_epoch.append(new_rates)
            payouts_by_epoch.append(new_payouts)
        return np.array(rates_by_epoch), np.array(payouts_by_epoch)

    def arm_order(self, seed: int) -> np.ndarray:
        """The offer shown at each candidate position for this seed (arm order shuffled per seed)."""
        return np.random.default_rng([self.number, seed, 11]).permutation(self.k)


ENVS = {
    env.key: env
    for env in (
        Env("E1", 1, "CPA-10", 100_000, 10, detail="rates 0.5-8 %, fixed payouts 200-8,000 c, best 0.5 % x 8,000 c"),
        Env(
            "E2",
            2,
            "canonical low-rate",
            20_000,
            10,
            unit="conversions",
            detail="rates (0.10, 0.05x3, 0.02x3, 0.01x3), payout 1",
        ),
        Env(
            "E3",
            3,
            "many offers",
            100_000,
            MANY_K,
            unit="conversions",
            detail="K = 100, rates ~ Beta(2, 48) per seed, payout 1",
        ),
        Env(
            "E4",
            4,
            "lognormal payouts",
            100_000,
            10,
            lognormal_sigma=1.5,
            detail="E1 with payouts lognormal, sigma = 1.5, same means",
        ),
        Env(
            "E5",
            5,
            "drift",
            100_000,
            10,
            changes=5,
            detail="E1's offers re-dealt 5 times (every T/6), each time another offer best",
        ),
        Env(
            "E6",
            6,
            "delayed conversions",
            100_000,
            10,
            delay_mean=2_000.0,
            detail="E1 with conversions reported after a geometric delay, mean 2,000 clicks",
        ),
        Env(
            "E8",
            8,
            "rotating candidates",
            100_000,
            20,
            shown=5,
            detail="CPA-20 (E1's offers twice, rates x exp(0.3 Z) per seed); each click offers 5 of the 20 "
            "at random; regret against the best of those 5",
        ),
        Env(
            "E9",
            9,
            "offers join mid-stream",
            100_000,
            10,
            joins=(0, 0, 0, 0, 0.25, 0.25, 0.25, 0.5, 0.5, 0.5),
            detail="E1's offers: 4 at the start, 3 join at T/4, 3 (the best among them) at T/2; "
            "regret against the best offer present",
        ),
        Env(
            "E10",
            10,
            "payouts known in advance",
            100_000,
            10,
            lognormal_sigma=1.5,
            payouts_known=True,
            detail="E4 (lognormal payouts) with each offer's mean payout given to the policy",
        ),
    )
}


def lai_robbins_constant(rates: np.ndarray) -> float:
    """C = sum over suboptimal arms of (mu* - mu_i) / kl(mu_i, mu*), Bernoulli rewards."""
    best = rates.max()
    total = 0.0
    for mu in rates:
        if mu < best:
            kl = mu * np.log(mu / best) + (1 - mu) * np.log((1 - mu) / (1 - best))
            total += (best - mu) / kl
    return total
