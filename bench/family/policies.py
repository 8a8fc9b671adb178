"""The policies the family compares: the project's samplers as the service runs them, and named
variants (prototypes of a different default, run only when asked for).

A policy is a sampler of shared.cpa.policies, its SamplerParams and the store's drift restarts
(DriftParams, clock at one click a second as in bench/run.py's DRIFT; only for the samplers that
decide on restarted statistics, the registry's `forgets`), or None (cumulative counters).
"""

import zlib
from dataclasses import dataclass, replace

from bench.run import PAYOUT_OPTIMISM, PLAIN
from shared.cpa.drift import MEASURED, SERVICE_DEFAULT, SUGGESTED_HALF_LIFE_SECONDS, DriftParams
from shared.cpa.policies import DEFAULT_SAMPLER, SamplerParams
from shared.cpa.policies import SAMPLERS as REGISTRY

RUNNER_VERSION = 2  # bump when bench/family/cpa_runner.py or cpa_envs.py change what a run measures
DRIFT, RESTARTS = SERVICE_DEFAULT, MEASURED  # the service's restarts (None: off), and as measured


@dataclass(frozen=True)
class Policy:
    name: str
    sampler: str
    params: SamplerParams
    drift: DriftParams | None
    label: str
    discounted: bool = False  # decides on the drift state's discounted window (cpa_runner.run_batch)

    @property
    def key(self) -> str:
        """Names a kept run: everything that decides its result but the code (RUNNER_VERSION stands for that)."""
        detail = repr(
            (self.sampler, self.params, self.drift, RUNNER_VERSION) + (("discounted",) if self.discounted else ())
        )
        return f"{self.name}-{zlib.crc32(detail.encode()):08x}"


def _project(name: str, sampler: str, label: str, drift: bool | DriftParams = True, **changes) -> Policy:
    params = replace(SamplerParams(), **changes)
    forgets = REGISTRY[sampler].forgets if sampler in REGISTRY else True  # prototypes are thompson's
    restarts = drift if isinstance(drift, DriftParams) else DRIFT if drift else None
    return Policy(name, sampler, params, restarts if forgets else None, label)


def _variant(name: str, sampler: str, label: str, drift: bool | DriftParams = True, **changes) -> Policy:
    """A variant as it was measured: on plain Thompson (no re-tries) unless it says otherwise."""
    return _project(name, sampler, label, drift, **{"retry_level": None, **changes})


SAMPLERS = {  # every project sampler as the service runs it (default SamplerParams, drift where it applies)
    policy.name: policy
    for policy in (
        _project("thompson", "thompson", "thompson (project)"),
        _project("klucb", "klucb", "klucb (project)"),
        _project("greedy", "greedy", "greedy, 100 warm-up (project)"),
        _project("epsilon", "epsilon", "epsilon-greedy 0.1 (project)"),
        _project("ucb", "ucb", "UCB1 (project)"),
        _project("random", "random", "uniform random (project)"),
    )
}
VARIANTS = {
    policy.name: policy
    for policy in (
        _variant("thompson-drift", "thompson", "thompson with drift restarts (the default before)", RESTARTS),
        *(
            _variant(
                f"thompson-drift{t:g}",
                "thompson",
                f"thompson, restarts at threshold {t:g}",
                DriftParams(SUGGESTED_HALF_LIFE_SECONDS, t),
            )
            for t in (9.0, 12.0, 16.0)
        ),
        _variant("thompson-prior-a1", "thompson-prior-a1", "thompson, fitted prior's a raised to 1 (prototype)"),
        *(
            _variant(
                f"thompson-prior-w{w}", f"thompson-prior-w{w}", f"thompson, fitted prior at most {w} clicks (prototype)"
            )
            for w in (100, 30)
        ),
        *(
            _variant(
                f"thompson-klfloor{c:g}",
                f"thompson-klfloor{c:g}",
                f"thompson, draw at least the KL-UCB index at {c:g} ln t (prototype)",
            )
            for c in (0.25, 0.5, 1.0)
        ),
        *(
            replace(
                _variant(
                    f"thompson-discount{h // 1000:g}k",
                    "thompson",
                    f"thompson on counts discounted at a half-life of {h:,} clicks (prototype)",
                    DriftParams(float(h), float("inf")),
                ),
                discounted=True,
            )
            for h in (5_000,)  # longer half-lives forget less and gain less on drift; not run
        ),
        _variant("klucb-half", "klucb", "klucb at half its level (0.5 ln t)", ucb_c=0.5),
        # the default since session 17 under the name it was measured by (the same runs as thompson's)
        _variant("thompson-retry", "thompson", "thompson, re-tries at the KL-UCB index at 0.5 ln t", retry_level=0.5),
        # the default before issue 26 (payout optimism, bench/run.py's PAYOUT_OPTIMISM), the same
        # without the optimistic payout draw, and plain Thompson (bench/run.py's PLAIN: the default
        # from issue 26 until re-tries)
        _variant(
            "thompson-payout-opt", "thompson", "thompson with payout optimism (the default before)", **PAYOUT_OPTIMISM
        ),
        _variant(
            "thompson-no-payout-opt",
            "thompson",
            "thompson without payout optimism",
            **{**PAYOUT_OPTIMISM, "optimistic_payout": False},
        ),
        _variant("thompson-plain", "thompson", "thompson, plain (no optimism, no re-tries)", **PLAIN),
        # exploration that fades as a posterior narrows, measured on E1-E2 only before issue 26
        # (bench/README.md, "Other options"): the largest of 2 draws, and May et al.'s reflection
        _variant("thompson-s2", "thompson", "thompson, the largest of 2 draws", samples=2),
        _variant("thompson-opt", "thompson", "thompson, optimistic (a draw below the mean reflected)", optimistic=True),
    )
}
POLICIES = {**SAMPLERS, **VARIANTS}
DEFAULT = DEFAULT_SAMPLER  # the family's default policy: the service's default sampler as the service runs it


def get(name: str) -> Policy:
    if name not in POLICIES:
        raise KeyError(f"unknown policy {name!r}; one of {', '.join(POLICIES)}")
    return POLICIES[name]
