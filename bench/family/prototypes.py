"""Bench-local prototypes of a policy core: ideas for the default, measured here before anything moves
into shared/. Each is a core with the project's signature, `(stats, total_clicks, params, rng,
propensity, mask) -> Decisions`, built only from the public names of shared.cpa.policies.
"""

from dataclasses import replace

import numpy as np

from shared.cpa.policies import SAMPLERS, fitted_beta_prior


def _thompson(stats, total_clicks, params, rng, propensity=False, mask=None):
    return SAMPLERS["thompson"].core(stats, total_clicks, params, rng, propensity, mask)


def thompson_prior_a1(stats, total_clicks, params, rng, propensity=False, mask=None):
    """thompson with the fitted Beta prior's a raised to 1, its mean kept (b scaled alike): an offer
    without a conversion keeps a draw that falls like 1 / clicks, not like its prior's tiny a / clicks
    (with a << 1 a few unlucky clicks write off a rare converter)."""
    a, b = fitted_beta_prior(stats.clicks, stats.conversions)
    scale = np.maximum(1.0 / np.maximum(a, 1e-12), 1.0)
    return _thompson(stats, total_clicks, replace(params, thompson_a=a * scale, thompson_b=b * scale), rng, False, mask)


PROTOTYPES = {
    "thompson-prior-a1": thompson_prior_a1,
}
