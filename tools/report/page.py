"""The report page: charts as PNG files beside one plain HTML file with inline CSS."""

import datetime
import html
import pathlib

import numpy as np

from tools.report import charts, proof
from tools.report.data import Limits, ReportData
from tools.report.ranking import Ranking, rank

CHARTS = (
    "traffic_share",
    "cumulative_revenue",
    "revenue_per_click",
    "probability_best",
    "acceptance_by_segment",
    *proof.CHARTS,
)

CSS = """
body { font-family: -apple-system, "Segoe UI", "DejaVu Sans", Arial, sans-serif; color: #222; background: #fff;
       max-width: 1120px; margin: 24px auto; padding: 0 24px; line-height: 1.45; }
h1 { font-size: 28px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 32px 0 6px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
.meta { color: #555; margin: 0 0 16px; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 16px 0; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 8px 14px; min-width: 128px; background: #fafafa; }
.card b { display: block; font-size: 22px; }
.card span { color: #555; font-size: 13px; }
img { max-width: 100%; display: block; }
.caption { color: #444; margin: 6px 0 0; font-size: 15px; }
.note { color: #8a5a00; }
table { border-collapse: collapse; margin-top: 8px; font-size: 14px; }
th, td { border-bottom: 1px solid #e5e5e5; padding: 4px 12px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
footer { color: #666; font-size: 13px; margin: 32px 0; }
"""


def _when(moment: datetime.datetime | float) -> str:
    if isinstance(moment, float):
        moment = datetime.datetime.fromtimestamp(moment, datetime.UTC)
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _number(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def render(
    data: ReportData, out: pathlib.Path, limits: Limits, source: str, rng: np.random.Generator, lifts=None
) -> list:
    """Write the charts into `<out stem>/` beside `out` and the page to `out`; returns the PNG paths.
    `lifts`: the holdout's lift and split per product (tools/report/proof.py), from the decision log."""
    folder = out.with_suffix("")
    folder.mkdir(parents=True, exist_ok=True)
    clicks, episodes = data.clicks, data.episodes
    ranking = rank(data.offers, data.stats, rng, limits.min_clicks)
    best_offer, best_rpc = ranking.best_offer, ranking.best_revenue_per_click
    rewarded = episodes.rewarded
    segments = [segment for segment, done in zip(episodes.segment, rewarded, strict=True) if done]

    paths = {name: folder / f"{name}.png" for name in CHARTS}
    charts.traffic_share(paths["traffic_share"], clicks.offer_id, clicks.sampled_at, data.offers)
    charts.cumulative_revenue(paths["cumulative_revenue"], clicks.sampled_at, clicks.reward, best_offer, best_rpc)
    if ranking.found is None:
        charts.empty(paths["revenue_per_click"], _nothing_ranked(data, ranking))
        charts.empty(paths["probability_best"], _nothing_ranked(data, ranking))
    else:
        charts.revenue_per_click(paths["revenue_per_click"], ranking.offers, ranking.found)
        charts.probability_best(paths["probability_best"], ranking.offers, ranking.found)
    charts.acceptance_by_segment(paths["acceptance_by_segment"], segments, episodes.accepted[rewarded])
    proof.draw(lifts, paths)

    first, last = (clicks.sampled_at[0], clicks.sampled_at[-1]) if len(clicks.sampled_at) else (None, None)
    notes = []
    if clicks.truncated:
        notes.append(f"Only the newest {limits.max_clicks:,} clicks were read (--max-clicks); older ones are left out.")
    if episodes.truncated:
        notes.append(f"Only the newest {limits.max_episodes:,} episodes were read (--max-episodes).")
    if data.offers_left_out:
        notes.append(f"{data.offers_left_out} less clicked offers are left out of the per-offer charts (--max-offers).")
    conversions = int((clicks.reward > 0).sum())
    revenue = float(clicks.reward.sum())
    cards = [
        (_number(len(clicks.offer_id)), "clicks in the window"),
        (_number(conversions), "conversions reported"),
        (_number(revenue), "revenue (cents)"),
        (_number(revenue / max(len(clicks.offer_id), 1), 1), "revenue per click (cents)"),
        (f"offer {best_offer}" if best_offer is not None else "–", "most likely best offer"),
        (_number(int(rewarded.sum())) + " / " + _number(len(rewarded)), "episodes answered / shown"),
    ]
    if best_offer is not None:
        best_line = (
            f"The dashed line is what the same clicks would have earned had each paid offer {best_offer}'s revenue "
            f"per click ({best_rpc:,.1f} cents, its all-time counters): the offer most likely best among those "
            f"with at least {limits.min_clicks:,} all-time clicks."
        )
    elif ranking.found is None:
        best_line = f"{_nothing_ranked(data, ranking)}, so no best offer to compare with."
    else:
        best_line = "No conversion yet among the offers with enough data, so no best offer to compare with."
    sections = [
        (
            "traffic_share",
            "Traffic share per offer over time",
            "The share of clicks each offer received in each time bucket (equal-width buckets over the window; "
            f"the {charts.MAX_SERIES} most clicked offers on their own). A learning sampler shifts traffic to the "
            "offers that earn most.",
        ),
        (
            "cumulative_revenue",
            "Cumulative revenue against the best single offer",
            "Solid: revenue reported for the window's clicks, summed in click order (a click without feedback yet "
            f"counts 0). {best_line}",
        ),
        (
            "revenue_per_click",
            "Revenue per click by offer, with 95 % intervals",
            "Dot: each offer's revenue per click so far (all-time counters: reward / clicks). Bar: the 95 % "
            "credible interval (conversion rate × mean payout, Monte Carlo; see shared/cpa/insights.py). "
            f"Most likely best on top. {_unranked_note(ranking)}",
        ),
        (
            "probability_best",
            "Probability of being the best offer",
            "The posterior probability that each offer has the highest revenue per click among the offers shown, "
            "from the same draws as the intervals. The shares sum to 100 %. " + _unranked_note(ranking),
        ),
        (
            "acceptance_by_segment",
            "Customer agent: acceptance by segment",
            "Of the episodes in the window whose reward has arrived, the share where the customer accepted one of "
            "the three offers, per segment (age band · region · gender), with 95 % Wilson intervals; the counts "
            "are accepted / answered. Policies in the window: "
            + (", ".join(f"{p} ({n})" for p, n in _counts(episodes.policy)) or "none")
            + ".",
        ),
        *proof.captions(lifts),
    ]
    window = f"{_when(data.since)} to {_when(data.until)}"
    span = f"; first click {_when(first)}, last click {_when(last)}" if first is not None else "; no clicks"
    body = [
        "<h1>offer-bandits report</h1>",
        f'<p class="meta">Window: {html.escape(window)}{html.escape(span)}.<br>Source: {html.escape(source)}. '
        f"Generated {html.escape(_when(datetime.datetime.now(datetime.UTC)))}.</p>",
        '<div class="cards">'
        + "".join(f'<div class="card"><b>{html.escape(v)}</b><span>{html.escape(k)}</span></div>' for v, k in cards)
        + "</div>",
        *(f'<p class="note">{html.escape(note)}</p>' for note in notes),
    ]
    for name, title, caption in sections:
        src = f"{folder.name}/{paths[name].name}"
        body += [
            f'<section id="{name}"><h2>{html.escape(title)}</h2>',
            f'<img src="{html.escape(src)}" alt="{html.escape(title)}">',
            f'<p class="caption">{html.escape(caption)}</p></section>',
        ]
    caps = dict(zip(data.offers, data.caps, strict=False))  # no caps read: an empty tuple
    body += [_offer_table(ranking, caps), proof.srm_table(lifts), _footer(limits)]
    out.write_text(
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>offer-bandits report</title><style>{CSS}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )
    return list(paths.values())


def _counts(values: list[str]) -> list[tuple[str, int]]:
    names, counts = np.unique(np.array(values, dtype=object), return_counts=True) if values else ([], [])
    return [(str(name), int(count)) for name, count in zip(names, counts, strict=True)]


def _nothing_ranked(data: ReportData, ranking: Ranking) -> str:
    if not data.offers:
        return "No offers clicked in the window"
    return f"No offer has {ranking.min_clicks:,} all-time clicks yet"


def _unranked_note(ranking: Ranking) -> str:
    """Names the offers left out of the ranking (too few all-time clicks), or says there are none."""
    if not ranking.unranked:
        return f"Every offer shown has at least {ranking.min_clicks:,} all-time clicks."
    listed = ", ".join(f"offer {offer} ({s.clicks:,})" for offer, s in ranking.unranked)
    return (
        f"Not enough data, not ranked (fewer than {ranking.min_clicks:,} all-time clicks, e.g. new or just "
        f"reset; --min-clicks): {listed}."
    )


def _offer_table(ranking: Ranking, caps: dict) -> str:
    """`caps`: each capped offer's cap and today's spend (CpaStore.cap_status), None if uncapped."""
    if not ranking.offers and not ranking.unranked:
        return ""
    head = "<tr><th>offer</th><th>clicks</th><th>conversions</th><th>revenue (cents)</th><th>per click</th>"
    head += "<th>95 % interval</th><th>P(best)</th>"
    capped = any(caps.values())
    head += "<th>today's spend / daily cap</th></tr>" if capped else "</tr>"
    rows = []
    for i in ranking.order():
        s, found = ranking.stats[i], ranking.found
        rows.append(
            f"<tr><td>offer {ranking.offers[i]}</td><td>{s.clicks:,}</td><td>{s.conversions:,}</td>"
            f"<td>{_number(s.reward)}</td><td>{found.observed[i]:,.2f}</td>"
            f"<td>{found.low[i]:,.2f} – {found.high[i]:,.2f}</td><td>{found.p_best[i]:.1%}</td>"
            + (f"<td>{_spend(caps.get(ranking.offers[i]))}</td>" if capped else "")
            + "</tr>"
        )
    for offer, s in ranking.unranked:
        rows.append(
            f"<tr><td>offer {offer}</td><td>{s.clicks:,}</td><td>{s.conversions:,}</td>"
            f"<td>{_number(s.reward)}</td><td>{s.reward / max(s.clicks, 1):,.2f}</td>"
            f'<td colspan="2">not enough data (fewer than {ranking.min_clicks:,} clicks)</td>'
            + (f"<td>{_spend(caps.get(offer))}</td>" if capped else "")
            + "</tr>"
        )
    return (
        '<section id="offers"><h2>Offers (all-time counters)</h2><table>' + head + "".join(rows) + "</table></section>"
    )


def _spend(cap: dict | None) -> str:
    """A capped offer's spend today against its cap (shared/cpa/caps.py), the spend still in flight
    (postbacks expected today from clicks already taken) when there is any, and its pacing price."""
    if cap is None:
        return "–"
    unit = "conversions" if cap["kind"] == "conversions" else "cents"
    share = cap["spent"] / cap["limit"]
    flying = cap.get("in_flight", 0.0)
    return (
        f"{_number(cap['spent'])} / {_number(cap['limit'])} {unit} ({share:.0%}) on {cap['day']} ({cap['tz']})"
        + (f", {_number(flying, 1)} more in flight" if flying > 0 else "")
        + f", {cap['share_of_day']:.0%} of the day gone; pacing price {cap['price']:.2f}"
    )


def _footer(limits: Limits) -> str:
    return (
        "<footer>Reads are bounded: the newest "
        f"{limits.max_clicks:,} click documents and {limits.max_episodes:,} episodes in the window, and the "
        f"all-time counters of the {limits.max_offers} most clicked offers. Written by <code>make report</code> "
        "(python -m tools.report --help).</footer>"
    )
