"""The 95 % interval every benchmark table reports: 1.96 standard errors over seeds (or environments)."""

import numpy as np


def ci95(x) -> float:
    """Half-width of the mean's 95 % interval; NaN for fewer than two values."""
    x = np.asarray(x, dtype=float)
    return float(1.96 * x.std(ddof=1) / np.sqrt(len(x))) if len(x) > 1 else float("nan")
