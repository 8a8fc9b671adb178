"""Bench-local prototypes of a policy core: ideas for the default, measured here before anything moves
into shared/. Each is a core with the project's signature, `(stats, total_clicks, params, rng,
propensity, mask) -> Decisions`, built only from the public names of shared.cpa.policies.
"""

from dataclasses import replace

import numpy as np

from shared.cpa.policies import SAMPLERS, fitted_beta_prior


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


PROTOTYPES = {
    "thompson-prior-a1": thompson_prior_a1,
    "thompson-prior-w100": thompson_prior_capped(100.0),
    "thompson-prior-w30": thompson_prior_capped(30.0),
}
