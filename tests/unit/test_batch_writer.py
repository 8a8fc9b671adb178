"""shared/batch/writer.py's ramp (pure); its writes against the emulator are in
tests/store/test_batch_writer.py."""

from shared.batch.writer import Ramp


def test_the_ramp_is_500_50_5_and_capped():
    now = [0.0]
    ramp = Ramp(maximum=1200, clock=lambda: now[0])
    rates = []
    for minute in (0, 4.9, 5, 9.9, 10, 15, 60):
        now[0] = minute * 60
        rates.append(ramp.rate())
    assert rates == [500, 500, 750, 750, 1125, 1200, 1200]


def test_the_ramp_reads_its_cap_from_the_env(monkeypatch):
    monkeypatch.setenv("BATCH_MAX_OPS_PER_SECOND", "2000")
    assert (Ramp.from_env().initial, Ramp.from_env().maximum) == (500, 2000)
