"""`make report`'s --since option (tools/report), pure."""

import pytest

from tools.report import __main__ as report


def test_since_takes_durations_and_dates_and_refuses_the_rest():
    import argparse
    import datetime

    now = datetime.datetime(2026, 1, 8, tzinfo=datetime.UTC)
    assert report.parse_since("7d", now) == datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    assert report.parse_since("90m", now) == now - datetime.timedelta(minutes=90)
    assert report.parse_since("2026-01-02", now) == datetime.datetime(2026, 1, 2, tzinfo=datetime.UTC)
    with pytest.raises(argparse.ArgumentTypeError):
        report.parse_since("last week", now)
