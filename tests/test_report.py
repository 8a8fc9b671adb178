"""`make report` end to end: simulated traffic through the one local URL, the report read from the real
Firestore emulator, its PNGs decoded, and the page rendered by Debian's headless Chromium."""

import html
import os
import pathlib
import re

import numpy as np
import pytest
import requests
from matplotlib import image

from devstack import emulators
from tools import traffic
from tools.report import __main__ as report
from tools.report import browser, page, ranking

CLICKS, CUSTOMERS = 300, 60


@pytest.fixture(scope="module")
def stack(gateway, firestore_emulator):
    """The gateway with an emptied Firestore that then received CLICKS clicks and CUSTOMERS customers."""
    from shared.platform.firestore import get_db

    emulators.clear_firestore(firestore_emulator.host_port, os.environ["GOOGLE_CLOUD_PROJECT"])
    get_db.cache_clear()
    sent = traffic.send(gateway, CLICKS, CUSTOMERS, seed=3)
    return gateway, sent


@pytest.fixture(scope="module")
def built(stack, tmp_path_factory):
    """The report as `make report` writes it (the CLI, reading FIRESTORE_EMULATOR_HOST)."""
    out = tmp_path_factory.mktemp("report") / "report.html"
    assert report.main(["--since", "1h", "--out", str(out), "--seed", "1"]) == 0
    return out


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
    url, sent = stack
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
    assert sum(int(clicks.replace(",", "")) for _, clicks, *_ in rows) == CLICKS
    # offers with fewer than --min-clicks all-time clicks are listed, not ranked (tools/report/ranking.py)
    ranked = {
        offer: float(share.group(1)) for offer, _, _, rest in rows if (share := re.search(r"([\d.]+)%</td>$", rest))
    }
    assert ranked, text
    for offer, clicks, _, rest in rows:
        enough = int(clicks.replace(",", "")) >= ranking.MIN_CLICKS
        assert (offer in ranked) == enough and ("not enough data" in rest) != enough, rest
    assert sum(ranked.values()) == pytest.approx(100, abs=0.3)


def test_reads_are_bounded_and_the_page_says_so(stack, tmp_path):
    out = tmp_path / "report.html"
    assert report.main(["--since", "1h", "--out", str(out), "--max-clicks", "50", "--max-offers", "2"]) == 0
    text = out.read_text()
    assert "<b>50</b><span>clicks in the window</span>" in text
    assert "Only the newest 50 clicks were read" in text
    assert "less clicked offers are left out" in text
    assert len(re.findall(r"<tr><td>offer \d+</td>", text)) == 2


def test_an_empty_window_still_gives_a_page_with_every_chart(stack, tmp_path):
    out = tmp_path / "report.html"
    assert report.main(["--since", "2100-01-01", "--out", str(out)]) == 0
    text = out.read_text()
    assert "<b>0</b><span>clicks in the window</span>" in text
    for name in page.CHARTS:
        assert non_white_share(decoded(out.parent / "report" / f"{name}.png")) > 0.002


def test_since_takes_durations_and_dates_and_refuses_the_rest():
    import argparse
    import datetime

    now = datetime.datetime(2026, 1, 8, tzinfo=datetime.UTC)
    assert report.parse_since("7d", now) == datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    assert report.parse_since("90m", now) == now - datetime.timedelta(minutes=90)
    assert report.parse_since("2026-01-02", now) == datetime.datetime(2026, 1, 2, tzinfo=datetime.UTC)
    with pytest.raises(argparse.ArgumentTypeError):
        report.parse_since("last week", now)


def test_the_page_renders_in_headless_chromium(built, tmp_path):
    if not browser.find():
        pytest.skip(
            "!!! Chromium is NOT installed, so the report was NOT checked in a browser. "
            f"Install {browser.INSTALL_HINT} !!!"
        )
    shot = tmp_path / "screenshot.png"
    browser.screenshot(built, shot, width=1280, height=4000)
    pixels = decoded(shot)
    assert pixels.shape[:2] == (4000, 1280)
    assert non_white_share(pixels) > 0.05
    # The charts' own colours: the images loaded (a broken image shows none of them).
    for colour in ("#1f77b4", "#2ca02c"):  # traffic share / revenue line, P(best) bars
        assert has_colour(pixels, colour), colour


def test_an_offer_just_reset_is_not_ranked_and_the_baseline_comes_from_offers_with_data(stack, tmp_path):
    # Last in this module: it zeroes the most clicked offer's counters (make reset), while its clicks
    # stay in the window.
    from shared import admin
    from shared.platform.firestore import get_db

    before = tmp_path / "before.html"
    assert report.main(["--since", "1h", "--out", str(before), "--seed", "1"]) == 0
    best = re.search(r"<b>offer (\d+)</b><span>most likely best offer</span>", before.read_text()).group(1)
    admin.reset(get_db(), "offer", best, "test", "the report after a reset")
    out = tmp_path / "report.html"
    assert report.main(["--since", "1h", "--out", str(out), "--seed", "1"]) == 0
    text = out.read_text()
    assert f"<b>offer {best}</b><span>most likely best offer</span>" not in text
    row = re.search(rf"<tr><td>offer {best}</td><td>0</td>.*?</tr>", text).group(0)
    assert "not enough data" in row, row
    baseline = re.search(r"had each paid offer (\d+)&#x27;s revenue per click \(([\d,.]+) cents", text)
    assert baseline and baseline.group(1) != best and float(baseline.group(2).replace(",", "")) > 0, text
