"""`make report` end to end: simulated traffic through the one local URL, with a holdout, published to the
decision log and fed into DuckDB as `make run` does; the report read from that log (and from the
Firestore emulator, `--firestore`, to check the figures agree), its PNGs decoded, and the page rendered
by Debian's headless Chromium, the holdout's lift chart included."""

import html
import os
import pathlib
import re
import time

import numpy as np
import pytest
import requests
from matplotlib import image

from devstack import emulators
from tools import traffic
from tools.report import __main__ as report
from tools.report import browser, charts, page, ranking

CLICKS, CUSTOMERS = 300, 60
HOLDOUT = 0.2  # the default tenant's share here, so that 300 clicks give the holdout's lift an interval


@pytest.fixture(scope="module")
def stack(logged_gateway, decision_log, firestore_emulator):
    """The logged gateway with an emptied Firestore and a holdout that then received CLICKS clicks and
    CUSTOMERS customers, all of them in the decision log; the log's path and held-out clicks."""
    from shared.platform.firestore import get_db

    emulators.clear_firestore(firestore_emulator.host_port, os.environ["GOOGLE_CLOUD_PROJECT"])
    get_db.cache_clear()
    get_db().document("config/serving").set({"cpa": {"holdout": HOLDOUT}, "customer": {"holdout": HOLDOUT}})
    time.sleep(2 * float(os.environ["SERVING_CONFIG_TTL_SECONDS"]))  # every instance sees the holdout
    sent = traffic.send(logged_gateway, CLICKS, CUSTOMERS, seed=3)
    assert decision_log.wait_for("decisions", "default", CLICKS + CUSTOMERS) == CLICKS + CUSTOMERS
    assert (
        decision_log.wait_for("outcomes", "default", sent["conversions"] + CUSTOMERS) == sent["conversions"] + CUSTOMERS
    )
    held = decision_log.query("SELECT COUNT(*) FROM decisions WHERE tenant = 'default' AND product = 'cpa' AND holdout")
    return logged_gateway, sent, decision_log.path, held[0][0]


def make_report(stack, out: pathlib.Path, *args: str) -> pathlib.Path:
    """`make report` on the test's decision log (the CLI)."""
    assert report.main(["--since", "1h", "--out", str(out), "--log", str(stack[2]), *args]) == 0
    return out


@pytest.fixture(scope="module")
def built(stack, tmp_path_factory):
    """The report as `make report` writes it."""
    return make_report(stack, tmp_path_factory.mktemp("report") / "report.html", "--seed", "1")


def decoded(png: pathlib.Path) -> np.ndarray:
    pixels = image.imread(png)  # a PNG decoder: fails on anything that is not a valid PNG
    assert pixels.ndim == 3 and pixels.shape[2] in (3, 4)
    return pixels[..., :3]


def non_white_share(pixels: np.ndarray) -> float:
    return float((pixels.min(axis=2) < 0.94).mean())


def has_colour(pixels: np.ndarray, hex_colour: str, tolerance: float = 0.06) -> bool:
    rgb = np.array([int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)])
    return bool((np.abs(pixels - rgb).max(axis=2) < tolerance).sum() > 200)


def test_the_page_has_every_chart_with_its_caption_and_valid_pngs_beside_it(built):
    text = built.read_text()
    assert "<title>offer-bandits report</title>" in text and "Window:" in text
    for name in page.CHARTS:
        section = re.search(
            rf'<section id="{name}"><h2>[^<]+</h2>\s*<img src="([^"]+)"[^>]*>\s*<p class="caption">[^<]+', text
        )
        assert section, f"{name} has no heading, image and caption"
        png = built.parent / html.unescape(section.group(1))
        assert png.exists()
        pixels = decoded(png)
        assert pixels.shape[0] > 150 and pixels.shape[1] > 800
        assert non_white_share(pixels) > 0.02, f"{png.name} is blank"


def test_the_page_counts_the_clicks_sent_and_the_service_counters_per_offer(stack, built):
    url, sent, _, held_out = stack
    text = built.read_text()
    assert f"<b>{CLICKS:,}</b><span>clicks in the window</span>" in text
    assert f"<b>{sent['conversions']:,}</b><span>conversions reported</span>" in text
    assert f"<b>{CUSTOMERS} / {CUSTOMERS}</b><span>episodes answered / shown</span>" in text
    rows = re.findall(r"<tr><td>offer (\d+)</td><td>([\d,]+)</td><td>([\d,]+)</td>(.*?)</tr>", text)
    assert {int(offer) for offer, *_ in rows} == set(traffic.SIMULATED_OFFERS)
    for offer, clicks, conversions, _ in rows:
        stats = requests.get(f"{url}/offer_ids/{offer}/stats/", timeout=30).json()
        assert (int(clicks.replace(",", "")), int(conversions.replace(",", ""))) == (
            stats["clicks"],
            stats["conversions"],
        )
    # the counters, as the log's totals, leave the holdout out: it is never learned from
    assert 0.1 * CLICKS < held_out < 0.3 * CLICKS
    assert sum(int(clicks.replace(",", "")) for _, clicks, *_ in rows) == CLICKS - held_out
    # offers with fewer than --min-clicks all-time clicks are listed, not ranked (tools/report/ranking.py)
    ranked = {
        offer: float(share.group(1)) for offer, _, _, rest in rows if (share := re.search(r"([\d.]+)%</td>$", rest))
    }
    assert ranked, text
    for offer, clicks, _, rest in rows:
        enough = int(clicks.replace(",", "")) >= ranking.MIN_CLICKS
        assert (offer in ranked) == enough and ("not enough data" in rest) != enough, rest
    assert sum(ranked.values()) == pytest.approx(100, abs=0.3)


def test_the_same_figures_from_firestore_and_from_the_decision_log(stack, built, tmp_path):
    from_firestore = make_report(stack, tmp_path / "report.html", "--seed", "1", "--firestore").read_text()
    from_log = built.read_text()
    cards = re.compile(r'<div class="card"><b>([^<]*)</b><span>([^<]*)</span></div>')
    assert cards.findall(from_firestore) == cards.findall(from_log)
    table = re.compile(r'<section id="offers">.*?</section>', re.S)
    assert table.search(from_firestore).group(0) == table.search(from_log).group(0)
    assert "read from the decision log (not with --firestore)" in from_firestore


def test_the_holdout_sections_show_the_lift_and_a_sound_split(stack, built):
    _, _, _, held_out = stack
    text = html.unescape(built.read_text())
    caption = re.search(r'<section id="lift_cpa">.*?<p class="caption">([^<]+)', text, re.S).group(1)
    assert "Over the window the learning policy made" in caption and "95 % interval [" in caption, caption
    assert (
        "holdout (served by the baseline, never learned from): " in caption and f"on {held_out:,} decisions" in caption
    )
    srm = re.search(r"<tr><td>cpa · whole window</td><td>([\d,]+)</td><td>([\d,]+)</td>.*?<td>(ok|mismatch)</td>", text)
    assert (int(srm.group(1).replace(",", "")), int(srm.group(2)), srm.group(3)) == (CLICKS, held_out, "ok")


def test_reads_are_bounded_and_the_page_says_so(stack, decision_log, tmp_path):
    # How many offers the newest 50 clicks went to depends on the gateway's draws (Thompson may send
    # nearly all of them to one offer, and the holdout's few to one other): counted from the log.
    newest = decision_log.query(
        "SELECT COUNT(DISTINCT offer_id) FROM (SELECT offer_id FROM decisions"
        " WHERE tenant = 'default' AND product = 'cpa' ORDER BY time DESC LIMIT 50)"
    )[0][0]
    out = make_report(stack, tmp_path / "report.html", "--max-clicks", "50", "--max-offers", "1")
    text = out.read_text()
    assert "<b>50</b><span>clicks in the window</span>" in text
    assert "Only the newest 50 clicks were read" in text
    left_out = f"{newest - 1} less clicked offers are left out" in text
    assert left_out == (newest > 1), (newest, text)
    assert len(re.findall(r"<tr><td>offer \d+</td>", text)) == 1


def test_an_empty_window_still_gives_a_page_with_every_chart(stack, tmp_path):
    out = tmp_path / "report.html"
    assert report.main(["--since", "2100-01-01", "--out", str(out), "--log", str(stack[2])]) == 0
    text = out.read_text()
    assert "<b>0</b><span>clicks in the window</span>" in text
    for name in page.CHARTS:
        assert non_white_share(decoded(out.parent / "report" / f"{name}.png")) > 0.002


def test_the_page_renders_in_headless_chromium(built, tmp_path):
    if not browser.find():
        pytest.skip(
            "!!! Chromium is NOT installed, so the report was NOT checked in a browser. "
            f"Install {browser.INSTALL_HINT} !!!"
        )
    shot = tmp_path / "screenshot.png"
    browser.screenshot(built, shot, width=1280, height=7000)
    pixels = decoded(shot)
    assert pixels.shape[:2] == (7000, 1280)
    assert non_white_share(pixels) > 0.05
    # The charts' own colours: the images loaded (a broken image shows none of them).
    for colour in ("#1f77b4", "#2ca02c"):  # traffic share / revenue line, P(best) bars
        assert has_colour(pixels, colour), colour
    assert has_colour(pixels, charts.WINDOW_COLOUR, tolerance=0.03), "the holdout's lift chart"


def test_an_offer_just_reset_is_not_ranked_and_the_baseline_comes_from_offers_with_data(stack, tmp_path):
    # Last in this module: it zeroes the most clicked offer's counters (make reset), while its clicks
    # stay in the window.
    from shared import admin
    from shared.platform.firestore import get_db

    # Two offers ranked with conversions whatever the module's traffic did (the gateway's draws vary
    # from run to run): 60 clicks each as the only candidate, every 3rd or 5th converting; the
    # holdout's share of them is fixed by their click ids. So after the best is reset, another ranked
    # offer has revenue to price the baseline.
    url, click_id = stack[0], 9_000_000
    for offer, every in ((101, 3), (102, 5)):
        for i in range(60):
            click_id += 1
            requests.get(
                f"{url}/sample/", params={"click_id": click_id, "offer_ids": offer}, timeout=30
            ).raise_for_status()
            if i % every == 0:
                feedback = {"click_id": click_id, "reward": 1000}
                requests.put(f"{url}/feedback/", params=feedback, timeout=30).raise_for_status()
    # the counters as the samplers see them: Firestore's (the log keeps every click, reset or not)
    before = tmp_path / "before.html"
    assert report.main(["--since", "1h", "--out", str(before), "--seed", "1", "--firestore"]) == 0
    best = re.search(r"<b>offer (\d+)</b><span>most likely best offer</span>", before.read_text()).group(1)
    admin.reset(get_db(), "offer", best, "test", "the report after a reset")
    out = tmp_path / "report.html"
    assert report.main(["--since", "1h", "--out", str(out), "--seed", "1", "--firestore"]) == 0
    text = out.read_text()
    assert f"<b>offer {best}</b><span>most likely best offer</span>" not in text
    row = re.search(rf"<tr><td>offer {best}</td><td>0</td>.*?</tr>", text).group(0)
    assert "not enough data" in row, row
    baseline = re.search(r"had each paid offer (\d+)&#x27;s revenue per click \(([\d,.]+) cents", text)
    assert baseline and baseline.group(1) != best and float(baseline.group(2).replace(",", "")) > 0, text
    # priced from that ranked offer's own row
    cells = re.search(rf"<tr><td>offer {baseline.group(1)}</td><td>([\d,]+)</td><td>[\d,]+</td><td>([\d,]+)</td>", text)
    clicks, revenue = (int(cells.group(i).replace(",", "")) for i in (1, 2)) if cells else (0, 0)
    assert clicks >= 30, text
    # the sentence rounds to 1 decimal, the row's per-click cell to 2: compare with the exact quotient
    assert baseline.group(2) == f"{revenue / clicks:,.1f}", (baseline.group(2), revenue, clicks)
