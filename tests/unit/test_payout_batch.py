"""Thompson's payout posterior (payout_normal) on a batch that mixes requests with known payouts
and requests without (as `make evaluate`'s replay batches them): each row is what it would be
alone, with no numpy warning (an all-NaN row once made `nanmax` warn and priced that row's
unconverted offers at NaN)."""

import math
import warnings

import numpy as np

from shared.cpa.policies import OfferStats, SamplerParams, Stats, payout_normal

ROWS = [
    [OfferStats(100, 5, 1000.0, 200_000.0, 5, 5 * math.log(200), 5 * math.log(200) ** 2), OfferStats(40), OfferStats()],
    [OfferStats(80, 2, 900.0, 405_000.0, 2, 2 * math.log(450), 2 * math.log(450) ** 2), OfferStats(10), OfferStats(3)],
]
PAYOUTS = [[250.0, math.nan, 1500.0], [math.nan, math.nan, math.nan]]  # the second request knows none


def batch(rows: list[list[OfferStats]]) -> Stats:
    return Stats(*np.concatenate([np.stack(Stats.of(row)) for row in rows], axis=1))


def test_each_row_of_a_mixed_batch_is_priced_as_it_would_be_alone():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any numpy RuntimeWarning fails the test
        m, s = payout_normal(batch(ROWS), SamplerParams(payouts=np.array(PAYOUTS)))
        for row, (stats, payouts) in enumerate(zip(ROWS, PAYOUTS, strict=True)):
            alone = None if all(math.isnan(p) for p in payouts) else tuple(payouts)
            m_alone, s_alone = payout_normal(Stats.of(stats), SamplerParams(payouts=alone))
            np.testing.assert_allclose(m[row], m_alone[0])
            np.testing.assert_allclose(s[row], s_alone[0])
    assert np.isfinite(m).all() and np.isfinite(s).all()
