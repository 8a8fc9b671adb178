"""Bench-local prototypes of a policy core: ideas for the default, measured here before anything moves
into shared/. Each is a core with the project's signature, `(stats, total_clicks, params, rng,
propensity, mask) -> Decisions`, built only from the public names of shared.cpa.policies.
"""

from dataclasses import replace

import numpy as np

from shared.cpa.policies import SAMPLERS, Decisions, fitted_beta_prior, retry_floors, thompson_draws, thompson_posterior


def _thompson(stats, total_clicks, params, rng, propensity=False, mask=None):
    return SAMPLERS["thompson"].core(stats, total_clicks, params, rng, propensity, mask)


def _with_fitted_prior_scaled(scale_of):
    """A thompson core whose fitted Beta prior (a, b) is multiplied by scale_of(a, b): its mean kept,
    its weight changed."""

    def core(stats, total_clicks, params, rng, propensity=False, mask=None):
        a, b = fitted_beta_prior(stats.clicks, stats.conversions)
        scale = scale_of(a, b)
        return _thompson(
            stats, total_clicks, replace(params, thompson_a=a * scale, thompson_b=b * scale), rng, False, mask
        )

    return core


# thompson with the fitted prior's a raised to 1: an offer without a conversion keeps a draw that
# falls like 1 / clicks, not like its prior's tiny a / clicks (with a << 1 a few unlucky clicks
# write off a rare converter).
thompson_prior_a1 = _with_fitted_prior_scaled(lambda a, b: np.maximum(1.0 / np.maximum(a, 1e-12), 1.0))


def thompson_prior_capped(weight: float):
    """thompson with the fitted Beta prior held to at most `weight` clicks (a + b <= weight). The
    fitted prior may weigh up to 1 / mean clicks (1,000 at a 0.1 % mean rate), so an offer that is
    shown rarely (a random subset of candidates per click) needs that many clicks of its own before
    its draw leaves the candidates' mean: klucb, without shrinkage, separates it sooner."""
    return _with_fitted_prior_scaled(lambda a, b: np.minimum(weight / (a + b), 1.0))


def thompson_kl_floor(scale: float):
    """thompson whose draw of each candidate's log revenue per click is at least its KL-UCB index at
    level `scale` x ln(clicks on the candidates) (rate) plus its payout posterior's centre: an offer the
    posterior has written off is re-tried as klucb re-tries it, at a rate that grows with ln t, which
    a market that moves rewards (issue 26's drifting class). Unseen candidates come first (index 1)."""

    def core(stats, total_clicks, params, rng, propensity=False, mask=None):
        posterior = thompson_posterior(stats, params)
        draws = thompson_draws(stats, params, rng, 1, posterior, mask)[0]
        # shared's floors, but an unseen candidate's at its KL-UCB rate of 1 (ln 1 + m): tried first
        floors = retry_floors(stats, replace(params, retry_level=scale), posterior[2])
        score = np.maximum(draws, np.where(stats.clicks > 0, floors, posterior[2]))
        if mask is not None:
            score = np.where(mask, score, -np.inf)
        index = np.argmax(score, axis=1)
        return Decisions(index, np.full(len(index), np.nan))

    return core


PROTOTYPES = {
    "thompson-prior-a1": thompson_prior_a1,
    "thompson-prior-w100": thompson_prior_capped(100.0),
    "thompson-prior-w30": thompson_prior_capped(30.0),
    **{f"thompson-klfloor{scale:g}": thompson_kl_floor(scale) for scale in (0.25, 0.5, 1.0)},
}
