"""Paired random numbers: a uniform for every (environment, seed, step, offer, stream), computed
from a counter-based hash (splitmix64), so every policy that shows offer x at step t of seed s sees
the very same outcome, whatever it did before, without storing a (T x K) table per seed."""

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _mix(z: np.ndarray) -> np.ndarray:
    z = z + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def uniform(env: int, seed: np.ndarray, step: int | np.ndarray, offer: np.ndarray, stream: int) -> np.ndarray:
    """Uniforms in (0, 1), one per element of the broadcast of seed, step and offer."""
    with np.errstate(over="ignore"):
        salt = _mix(np.uint64(env) * np.uint64(1_000_003) + np.uint64(stream))
        # seed < 2^34, step < 2^20, offer < 2^10: one 64-bit counter per (seed, step, offer)
        counter = (
            (np.asarray(seed, dtype=np.uint64) << np.uint64(30))
            | (np.asarray(step, dtype=np.uint64) << np.uint64(10))
            | np.asarray(offer, dtype=np.uint64)
        )
        key = _mix(_mix(counter ^ salt))
    return ((key >> np.uint64(11)).astype(np.float64) + 0.5) / float(1 << 53)


def normal(env, seed, step, offer, stream: int) -> np.ndarray:
    """Standard normals by Box-Muller from two paired uniform streams (stream, stream + 1)."""
    u1 = uniform(env, seed, step, offer, stream)
    u2 = uniform(env, seed, step, offer, stream + 1)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)
