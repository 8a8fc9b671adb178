"""What the `contextual` environment allows: `python -m bench.context_bench --bounds`.

Two kinds of bound, as % of the contextual oracle (which knows every rate in every context):

- choosing by part of the true context, with no learning at all: the best single offer, the true
  country and device effects (the source ignored), the true country alone;
- learning with full information: every offer's outcome on every click is seen (K times the data a
  bandit gets, and no exploration to pay for), the sampler's own effect model
  (shared/cpa/context_model.py `effect_tables`) folded every FOLD_CLICKS clicks, and the offer with
  the highest estimated revenue per click chosen (payouts known). A bandit with that model sees one
  outcome per click, the one it chose, and pays for what it explores: this is a reference it should
  not beat (not a theorem: a learner that spends its data on the contenders can do better than an
  even spread of the same amount, which `revealed` measures). A target above the full-information
  line asks for a different model, or more traffic.
"""

import numpy as np

FOLD_CLICKS = 1_000


def known_effects(seeds: int = 20, every: int = 50) -> dict[str, float]:
    """% of the oracle earned by the best single offer, by the true country and device effects, and
    by the true country alone, on every `every`-th click of `seeds` seeds."""
    from bench.context_envs import ENVS, ContextWorld

    env = ENVS["contextual"]
    world = ContextWorld(env, np.arange(seeds))
    rows = np.arange(seeds)
    oracle, fixed, known, country = np.zeros(seeds), np.zeros((seeds, env.k)), np.zeros(seeds), np.zeros(seeds)
    geo, device = world.effects[0], world.effects[1]
    for step in range(0, env.horizon, every):
        context = world.context(step)
        _, values = world.values(context)
        oracle += values.max(axis=1)
        fixed += values
        by_geo = world.rates * world.payouts * np.exp(geo[rows, :, context[:, 0]])
        known += values[rows, (by_geo * np.exp(device[rows, :, context[:, 1]])).argmax(axis=1)]
        country += values[rows, by_geo.argmax(axis=1)]
    earned = {"best single offer": fixed.max(axis=1), "true country and device": known, "true country": country}
    return {label: 100 * float(np.mean(value / oracle)) for label, value in earned.items()}


def full_information(seeds: int = 20, features: tuple[int, ...] = (0, 1, 2), revealed: int | None = None) -> float:
    """% of the oracle earned by greedy choice on the effect model fitted to every offer's outcome
    on every click (the `features` of the context: 0 country, 1 device, 2 source); with `revealed`,
    to that many offers' outcomes per click, drawn at random (1: a bandit's amount of data, spread
    evenly, its exploration free)."""
    from bench.context_envs import ENVS, ContextWorld
    from shared.cpa.context_model import effect_tables

    env = ENVS["contextual"]
    world = ContextWorld(env, np.arange(seeds))
    rng = np.random.default_rng([env.number, 77])
    rows = np.arange(seeds)
    sizes = env.cardinalities()
    clicks = np.zeros((seeds, env.k, sum(sizes)))
    conversions = np.zeros_like(clicks)
    total_clicks, total_conversions = np.zeros((seeds, env.k)), np.zeros((seeds, env.k))
    shifts = np.zeros_like(clicks)
    revenue, oracle = np.zeros(seeds), np.zeros(seeds)
    for first in range(0, env.horizon, FOLD_CLICKS):
        contexts = world.contexts(first, FOLD_CLICKS)  # (N, B, 3)
        rates, values = world.values(contexts)  # (N, B, K)
        columns = contexts + world.offsets
        log_rate = np.log(np.maximum(total_conversions, 0.5) / np.maximum(total_clicks, 1.0))
        estimate = log_rate[None] + sum(shifts[rows[None, :], :, columns[..., f]] for f in features)
        chosen = (estimate + np.log(world.payouts)[None]).argmax(axis=2)
        revenue += np.take_along_axis(values, chosen[..., None], axis=2)[..., 0].sum(axis=0)
        oracle += values.max(axis=2).sum(axis=0)
        seen = np.ones(rates.shape)
        if revealed is not None:
            seen = (rng.random(rates.shape).argsort(axis=2) < revealed).astype(float)
        outcomes = (rng.random(rates.shape) < rates) * seen
        total_clicks += seen.sum(axis=0)
        total_conversions += outcomes.sum(axis=0)
        for f in features:
            for row in rows:
                np.add.at(clicks[row].T, columns[:, row, f], seen[:, row, :])
                np.add.at(conversions[row].T, columns[:, row, f], outcomes[:, row, :])
        for f in features:
            part = slice(world.offsets[f], world.offsets[f] + sizes[f])
            shifts[..., part] = effect_tables(clicks[..., part], conversions[..., part])[0]
    return 100 * float(np.mean(revenue / oracle))


def main(seeds: int = 20) -> None:
    for label, share in known_effects(seeds).items():
        print(f"{label}: {share:.1f} % of the contextual oracle ({seeds} seeds)", flush=True)
    for label, features in (
        ("country, device and source", (0, 1, 2)),
        ("country and device", (0, 1)),
        ("no context", ()),
    ):
        share = full_information(seeds, features)
        print(f"full information, learning {label}: {share:.1f} % of the contextual oracle ({seeds} seeds)", flush=True)
    for revealed in (1, 2, 5):
        share = full_information(seeds, revealed=revealed)
        print(
            f"{revealed} random offer(s)' outcome per click, learning country, device and source:"
            f" {share:.1f} % of the contextual oracle ({seeds} seeds)",
            flush=True,
        )
