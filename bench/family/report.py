"""Tables and plots of the family's runs: per class and overall, paired 95 % intervals.

The measure is points of oracle revenue lost, 100 x pseudo-regret / the oracle's expected revenue, per
environment; a policy's "% of oracle" is 100 minus it. Paired differences (default - policy, in points
of oracle revenue; positive: the default earned more) are taken environment by environment (the
same environments and draws for every policy); intervals are mean +- 1.96 standard errors over
environments. Overall: every test environment weighs the same (the classes have equal counts).
"""

import numpy as np

from bench.family import cpa_envs, lai_robbins, policies
from bench.family.cpa_runner import GRID
from bench.intervals import ci95

STATIONARY = cpa_envs.STATIONARY_CLASSES


def wilson(k: int, n: int) -> tuple[float, float]:
    """95 % Wilson interval of a proportion k / n."""
    if n == 0:
        return float("nan"), float("nan")
    p, z = k / n, 1.96
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def header(command: str, seconds: float) -> str:
    return (
        "# Generated family (issue 26)\n\n"
        f"`{command}` ({seconds / 60:.1f} min, kept runs reused). Points of the oracle's revenue (CPA) or "
        "acceptances (customer agents): 100 x pseudo-regret / the oracle's expected total, per environment; "
        "paired differences environment by environment (the same environments and draws for every policy), "
        "mean ± 95 % CI over environments.\n\n"
    )


def _lost(runs) -> np.ndarray:
    return np.array([r.lost_points for r in runs])


def _label(name: str) -> str:
    return policies.get(name).label + (" **default**" if name == policies.DEFAULT else "")


def cpa_section(part: str, runs: dict, out) -> str:
    names = list(runs)
    first = runs[names[0]]
    classes = list(dict.fromkeys(r.cls for r in first))
    members = {cls: np.array([r.cls == cls for r in first]) for cls in classes}
    groups = [*classes, "overall"] if len(classes) > 1 else classes
    members["overall"] = np.ones(len(first), dtype=bool)
    counts = ", ".join(f"{cls} {members[cls].sum()}" for cls in classes)
    lines = [f"## {part}: {len(first)} environments ({counts})", ""]
    if part == "lock_on":
        return "\n".join(lines + lock_on_table(runs) + [""])
    lines += ["% of oracle revenue, mean ± 95 % CI over environments:", ""]
    lines += _table(groups, names, lambda n, g: _mean_ci(100.0 - _lost(runs[n])[members[g]]), _label)
    default = policies.DEFAULT
    if default in runs and len(names) > 1:
        base = _lost(runs[default])
        lines += [f"Paired: `{default}` − policy, points of oracle revenue (positive: the default earned more):", ""]
        others = [n for n in names if n != default]
        lines += _table(groups, others, lambda n, g: _mean_ci((_lost(runs[n]) - base)[members[g]], "+"), _label)
        lines += default_verdict(runs, members, classes)
    lines += ["Points of oracle revenue lost: median / p90 over environments:", ""]
    lines += _table(
        groups,
        names,
        lambda n, g: (
            f"{np.median(_lost(runs[n])[members[g]]):.1f} / {np.percentile(_lost(runs[n])[members[g]], 90):.1f}"
        ),
        _label,
    )
    lines += lai_robbins_table(runs, first)
    lines += restarts_table(runs, first)
    if "thompson-drift" in runs and "thompson" in runs:
        gain = _lost(runs["thompson"]) - _lost(runs["thompson-drift"])
        lines += ["Drift restarts: `thompson-drift` − `thompson` (no restarts), points of oracle revenue, paired:", ""]
        lines += ["| " + " | ".join(groups) + " |", "|" + "---|" * len(groups)]
        lines += ["| " + " | ".join(_mean_ci(gain[members[g]], "+") for g in groups) + " |", ""]
    if "close" in classes:
        lines += ["Lock-on on the close class (see the lock_on part for the 320-environment measurement):", ""]
        lines += lock_on_table({n: [r for r in runs[n] if r.cls == "close"] for n in names})
    path = plot(runs, classes, out / f"regret_{part}.png")
    lines += [f"![mean regret against clicks per class]({path.name})", ""]
    return "\n".join(lines)


def default_verdict(runs: dict, members: dict, classes: list[str]) -> list[str]:
    """Issue 26's target for the default against every other project sampler (not the variants)."""
    compared = [n for n in runs if n in policies.SAMPLERS and n != policies.DEFAULT]
    lost = {name: _lost(runs[name]) for name in [policies.DEFAULT, *compared]}
    return target_line(lost, policies.DEFAULT, compared, members, classes, "project sampler")


def target_line(
    lost: dict, default: str, compared: list[str], members: dict, classes: list[str], kind: str
) -> list[str]:
    """Issue 26's target, the same for the CPA samplers and the customer agents: the paired
    difference default - each other >= 0 overall and >= -0.5 points in every class (point estimates)."""
    if not compared:
        return [f"Target (default ≥ every other {kind}): no verdict, no other {kind} ran.", ""]
    misses = []
    for name in compared:
        diff = lost[name] - lost[default]
        if diff.mean() < 0:
            misses.append(f"overall behind `{name}` ({diff.mean():+.2f} ± {ci95(diff):.2f})")
        for cls in classes:
            d = diff[members[cls]]
            if d.mean() < -0.5:
                misses.append(f"{cls} behind `{name}` by more than 0.5 ({d.mean():+.2f} ± {ci95(d):.2f})")
    verdict = "met" if not misses else "not met: " + "; ".join(misses)
    return [f"Target (default ≥ every other {kind} overall, ≥ −0.5 points in every class): {verdict}.", ""]


def _mean_ci(x: np.ndarray, sign: str = "") -> str:
    return f"{x.mean():{sign}.2f} ± {ci95(x):.2f}"


def _table(groups, names, cell, label, first: str = "policy") -> list[str]:
    lines = [f"| {first} | " + " | ".join(groups) + " |", "|---|" + "---|" * len(groups)]
    lines += ["| " + label(n) + " | " + " | ".join(cell(n, g) for g in groups) + " |" for n in names]
    return [*lines, ""]


def lai_robbins_table(runs: dict, first: list) -> list[str]:
    """Regret over C ln T on the classes where the bound applies (median over informative environments)."""
    envs = {r.key: cpa_envs.draw(r.cls, int(r.key.rsplit("-", 1)[1])) for r in first}
    applies = [i for i, r in enumerate(first) if lai_robbins.applies(envs[r.key])]
    if not applies:
        return []
    constants = {i: lai_robbins.constant(envs[first[i].key]) for i in applies}
    useful = [i for i in applies if lai_robbins.informative(envs[first[i].key], constants[i])]
    lines = [
        f"Lai–Robbins: regret / (C ln T) and the slope (R(T) − R(T/2)) / (C ln 2) on the stationary classes whose "
        f"offers are all eligible (stationary, delayed, close), over the {len(useful)} of {len(applies)} environments "
        "where C ln T < T × mean gap / 2 (elsewhere the asymptotic bound says nothing at this horizon); median "
        "[quartiles]:",
        "",
        "| policy | regret / (C ln T) | slope / C | share below the bound |",
        "|---|---|---|---|",
    ]
    for name, rows in runs.items():
        ratio, slope = [], []
        for i in useful:
            run, c = rows[i], constants[i]
            ratio.append(run.regret[-1] / (c * np.log(run.horizon)))
            half = int(np.flatnonzero(run.clicks <= run.horizon // 2)[-1])
            slope.append((run.regret[-1] - run.regret[half]) / (c * np.log(run.horizon / run.clicks[half])))
        q = np.percentile(ratio, [25, 50, 75]) if ratio else [np.nan] * 3
        s = np.percentile(slope, [25, 50, 75]) if slope else [np.nan] * 3
        below = np.mean(np.array(ratio) < 1.0) if ratio else np.nan
        lines.append(
            f"| {_label(name)} | {q[1]:.2f} [{q[0]:.2f}, {q[2]:.2f}] | {s[1]:.2f} [{s[0]:.2f}, {s[2]:.2f}] "
            f"| {100 * below:.0f} % |"
        )
    return [*lines, ""]


def restarts_table(runs: dict, first: list) -> list[str]:
    """False restarts on the stationary classes, per 10 million clicks and per 10 million offer-clicks."""
    stationary = [i for i, r in enumerate(first) if r.cls in STATIONARY]
    if not stationary:
        return []
    envs = {r.key: cpa_envs.draw(r.cls, int(r.key.rsplit("-", 1)[1])) for r in first}
    lines = []
    for name, rows in runs.items():
        if policies.get(name).drift is None:
            continue
        restarts = sum(rows[i].restarts for i in stationary)
        clicks = sum(rows[i].horizon for i in stationary)
        offer_clicks = sum(rows[i].horizon * envs[rows[i].key].k for i in stationary)
        low, high = (1e7 * x / clicks for x in _poisson(restarts))
        if not lines:
            lines = [
                "False restarts on the stationary classes (every restart there is false): per 10 million clicks, "
                "i.e. per 10 million clicks an offer receives (95 % interval), and per offer per 10 million "
                "clicks of traffic:",
                "",
                "| policy | restarts | clicks | per 10M clicks received | per offer per 10M clicks |",
                "|---|---|---|---|---|",
            ]
        lines.append(
            f"| {_label(name)} | {restarts} | {clicks:,} | {1e7 * restarts / clicks:.2f} [{low:.2f}, {high:.2f}] "
            f"| {1e7 * restarts / offer_clicks:.3f} |"
        )
    return [*lines, ""] if lines else []


def _poisson(k: int) -> tuple[float, float]:
    """95 % interval of a Poisson mean from one count (exact, chi-square)."""
    from scipy.stats import chi2

    return (chi2.ppf(0.025, 2 * k) / 2 if k else 0.0), chi2.ppf(0.975, 2 * k + 2) / 2


def lock_on_table(runs: dict) -> list[str]:
    """Share of environments whose last 10 % of clicks went mostly to the worse offer."""
    lines = ["| policy | environments | mostly the worse offer at the end | share (95 % CI) |", "|---|---|---|---|"]
    for name, rows in runs.items():
        worse = 0
        for run in rows:
            env = cpa_envs.draw(run.cls, int(run.key.rsplit("-", 1)[1]))
            best = int(np.argmax(env.values_at(env.horizon - 1)))
            worse += run.late_clicks[best] < 0.5 * run.late_clicks.sum()
        low, high = wilson(worse, len(rows))
        lines.append(
            f"| {_label(name)} | {len(rows)} | {worse} | {100 * worse / len(rows):.2f} % "
            f"[{100 * low:.2f}, {100 * high:.2f}] |"
        )
    return [*lines, ""]


def plot(runs: dict, classes: list[str], path):
    from bench import plots

    columns = 3
    fig, axes = plots.subplots(-(-len(classes) // columns), columns, figsize=(13, 7.5), squeeze=False)
    for ax, cls in zip(axes.ravel(), classes, strict=False):
        for name, rows in runs.items():
            chosen = [r for r in rows if r.cls == cls]
            share = np.full((len(chosen), len(GRID)), np.nan)
            for j, run in enumerate(chosen):
                at = np.searchsorted(GRID, run.clicks)
                ok = (at < len(GRID)) & (GRID[np.minimum(at, len(GRID) - 1)] == run.clicks)
                share[j, at[ok]] = 100.0 * run.regret[ok] / np.maximum(run.oracle[ok], 1e-12)
            reached = (~np.isnan(share)).sum(axis=0)
            mean = np.where(reached > 0, np.nansum(share, axis=0) / np.maximum(reached, 1), np.nan)
            width = 2.4 if name == policies.DEFAULT else 1.2
            ax.plot(GRID, mean, lw=width, label=name)
        ax.set_xscale("log")
        ax.set_title(f"{cls} ({len([r for r in runs[next(iter(runs))] if r.cls == cls])} environments)", fontsize=10)
        ax.set_xlabel("clicks")
        ax.set_ylabel("regret so far, % of oracle revenue")
        ax.grid(alpha=0.3)
    axes.ravel()[0].legend(fontsize=8)
    for ax in axes.ravel()[len(classes) :]:
        ax.set_visible(False)
    fig.suptitle("Mean regret against clicks per class (environments that reach each click)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plots.close(fig)
    return path
