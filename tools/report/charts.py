"""The report's charts, one PNG each (matplotlib, no display). Each function takes plain arrays and
writes `path`; with nothing to draw it writes a small figure that says so."""

import datetime
import pathlib

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates  # noqa: E402  (after choosing the backend)
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker as mticker  # noqa: E402
import numpy as np  # noqa: E402

from shared.cpa.insights import Insights  # noqa: E402

WIDTH, HEIGHT, DPI = 10.0, 4.2, 110
MAX_SERIES = 8  # offers drawn on their own in the traffic chart; the rest are "other offers"
Z95 = 1.959964


def _figure(height: float = HEIGHT):
    figure, axes = plt.subplots(figsize=(WIDTH, height), dpi=DPI, layout="constrained")
    axes.spines[["top", "right"]].set_visible(False)
    axes.grid(True, axis="both", color="#e5e5e5", linewidth=0.8)
    axes.set_axisbelow(True)
    return figure, axes


def _save(figure, path: pathlib.Path) -> pathlib.Path:
    figure.savefig(path, format="png")
    plt.close(figure)
    return path


def empty(path: pathlib.Path, message: str) -> pathlib.Path:
    figure, axes = _figure(1.6)
    axes.axis("off")
    axes.text(0.5, 0.5, message, ha="center", va="center", fontsize=13, color="#666666")
    return _save(figure, path)


def _times(seconds: np.ndarray) -> list[datetime.datetime]:
    return [datetime.datetime.fromtimestamp(s, datetime.UTC) for s in seconds]


def _time_axis(axes) -> None:
    locator = mdates.AutoDateLocator(minticks=4, maxticks=9)
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    axes.set_xlabel("time (UTC)")


def buckets(sampled_at: np.ndarray, target: int = 30, min_per_bucket: int = 20) -> np.ndarray:
    """Equal-width time bucket edges over the clicks: about `target` buckets, fewer when there are
    too few clicks to fill them (at least `min_per_bucket` clicks a bucket on average)."""
    count = int(np.clip(len(sampled_at) // min_per_bucket, 1, target))
    start, end = float(sampled_at.min()), float(sampled_at.max())
    return np.linspace(start, max(end, start + 1.0), count + 1)


def traffic_share(path, offer_id: np.ndarray, sampled_at: np.ndarray, offers: list[int]) -> pathlib.Path:
    """Stacked share of clicks per offer in each time bucket; offers beyond MAX_SERIES pooled."""
    if len(offer_id) == 0:
        return empty(path, "No clicks in the window")
    edges = buckets(sampled_at)
    bucket = np.clip(np.searchsorted(edges, sampled_at, side="right") - 1, 0, len(edges) - 2)
    shown = offers[:MAX_SERIES]
    series = [np.bincount(bucket[offer_id == offer], minlength=len(edges) - 1) for offer in shown]
    labels = [f"offer {offer}" for offer in shown]
    rest = ~np.isin(offer_id, shown)
    if rest.any():
        series.append(np.bincount(bucket[rest], minlength=len(edges) - 1))
        labels.append("other offers")
    counts = np.array(series, dtype=float)
    share = counts / np.maximum(counts.sum(axis=0), 1.0)
    middles = _times((edges[:-1] + edges[1:]) / 2)
    figure, axes = _figure()
    colors = plt.get_cmap("tab10").colors
    axes.stackplot(middles, share * 100, labels=labels, colors=colors[: len(labels)], alpha=0.9)
    axes.set_ylim(0, 100)
    axes.set_ylabel("share of clicks (%)")
    if len(middles) > 1:
        axes.set_xlim(middles[0], middles[-1])
    _time_axis(axes)
    axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    return _save(figure, path)


def cumulative_revenue(path, sampled_at: np.ndarray, reward: np.ndarray, best_offer: int | None, best_rpc: float):
    """Cumulative reward of the clicks, against every click paying the best offer's revenue per click."""
    if len(sampled_at) == 0:
        return empty(path, "No clicks in the window")
    times = _times(sampled_at)
    figure, axes = _figure()
    axes.plot(times, np.cumsum(reward), color="#1f77b4", linewidth=2, label="revenue earned")
    if best_offer is not None:
        axes.plot(
            times,
            best_rpc * np.arange(1, len(sampled_at) + 1),
            color="#d62728",
            linestyle="--",
            linewidth=1.6,
            label=f"every click at offer {best_offer}'s revenue per click ({best_rpc:,.1f})",
        )
    axes.set_ylabel("cumulative revenue (cents)")
    axes.yaxis.set_major_formatter(mticker.StrMethodFormatter("{x:,.0f}"))
    _time_axis(axes)
    axes.legend(loc="upper left", frameon=False)
    return _save(figure, path)


def _offer_rows(offers: list[int], insights: Insights) -> tuple[np.ndarray, list[str]]:
    """Offers ordered most likely best first (P(best), then posterior mean) and their labels."""
    order = np.lexsort((-insights.mean, -insights.p_best))
    return order, [f"offer {offers[i]}" for i in order]


def _offer_chart(offers: list[int], insights: Insights):
    """A figure with one row per offer, most likely best on top: (order, labels, rows, figure, axes)."""
    order, labels = _offer_rows(offers, insights)
    figure, axes = _figure(max(2.2, 0.42 * len(order) + 1.2))
    return order, labels, np.arange(len(order))[::-1], figure, axes


def revenue_per_click(path, offers: list[int], insights: Insights) -> pathlib.Path:
    """Each offer's observed revenue per click (dot) and its 95 % interval (bar), best on top."""
    if not offers:
        return empty(path, "No offers clicked in the window")
    order, labels, rows, figure, axes = _offer_chart(offers, insights)
    low, high, observed = insights.low[order], insights.high[order], insights.observed[order]
    axes.hlines(rows, low, high, color="#1f77b4", linewidth=5, alpha=0.35, label=f"{insights.level:.0%} interval")
    axes.plot(observed, rows, "o", color="#1f77b4", label="observed (revenue / clicks)")
    for row, lo, hi in zip(rows, low, high, strict=True):
        axes.annotate(f"{lo:,.1f} – {hi:,.1f}", (hi, row), xytext=(6, 0), textcoords="offset points", va="center")
    axes.set_yticks(rows, labels)
    axes.set_xlim(0, float(high.max()) * 1.25 if high.max() > 0 else 1.0)
    unit = "cents per click" if insights.payout_known else "conversions per click (no payout seen yet)"
    axes.set_xlabel(unit)
    axes.legend(loc="lower right", frameon=False)
    return _save(figure, path)


def probability_best(path, offers: list[int], insights: Insights) -> pathlib.Path:
    if not offers:
        return empty(path, "No offers clicked in the window")
    order, labels, rows, figure, axes = _offer_chart(offers, insights)
    p_best = insights.p_best[order] * 100
    axes.barh(rows, p_best, color="#2ca02c", height=0.6)
    for row, value in zip(rows, p_best, strict=True):
        axes.annotate(f"{value:.1f} %", (value, row), xytext=(4, 0), textcoords="offset points", va="center")
    axes.set_yticks(rows, labels)
    axes.set_xlim(0, 108)
    axes.set_xlabel("probability of the highest revenue per click (%)")
    return _save(figure, path)


def wilson(successes: np.ndarray, trials: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """95 % Wilson score interval of a proportion (well behaved at 0 and 1 and for small n)."""
    n = np.maximum(trials, 1.0)
    p = successes / n
    centre = (p + Z95**2 / (2 * n)) / (1 + Z95**2 / n)
    half = Z95 * np.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / (1 + Z95**2 / n)
    return centre - half, centre + half


def acceptance_by_segment(path, segments: list[str], accepted: np.ndarray) -> pathlib.Path:
    """Share of rewarded episodes accepted, per segment, with 95 % Wilson intervals and counts."""
    if not segments:
        return empty(path, "No rewarded episodes in the window")
    names = sorted(set(segments))
    index = np.array([names.index(segment) for segment in segments])
    trials = np.bincount(index, minlength=len(names)).astype(float)
    successes = np.bincount(index, weights=accepted.astype(float), minlength=len(names))
    rate = successes / trials
    low, high = wilson(successes, trials)
    rows = np.arange(len(names))[::-1]
    figure, axes = _figure(max(2.2, 0.32 * len(names) + 1.2))
    axes.barh(rows, rate * 100, color="#9467bd", height=0.6, alpha=0.85)
    axes.errorbar(rate * 100, rows, xerr=[(rate - low) * 100, (high - rate) * 100], fmt="none", ecolor="#333333")
    for row, hi, s, n in zip(rows, high, successes, trials, strict=True):
        axes.annotate(f"{s:.0f} / {n:.0f}", (hi * 100, row), xytext=(5, 0), textcoords="offset points", va="center")
    axes.set_yticks(rows, [name.replace("|", " · ") for name in names])
    axes.set_xlim(0, 110)
    axes.set_xlabel("episodes accepted (%)")
    return _save(figure, path)
