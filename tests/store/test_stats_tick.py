"""The statistics cache's shared tick (shared/platform/stats_cache.py) against the emulator, on a
virtual clock with the background's work run inline: copies due within a tick are re-read in one
batch, a decision never uses a copy older than M, and a young copy that is still usable is
refreshed in the background, not on the request's path."""

import datetime
import random

import pytest

from shared.platform import counters, stats_cache

M = 2.0


def establish(db, path: str, as_of: float, rate: float, writes: float) -> None:
    """A counter of `writes` clicks at `rate` clicks/s, rolled up at `as_of` (its shard holds them)."""
    totals = {"clicks": writes, counters.WRITES: writes}
    counters.shard_ref(db, path, 0).set({counters.FIELD: totals})
    db.document(path).set(
        {"shards": 8, "totals": totals, "as_of": datetime.datetime.fromtimestamp(as_of, datetime.UTC), "rate": rate}
    )


def click(db, path: str) -> None:
    batch = db.batch()
    counters.add(batch, db, path, {"clicks": 1})
    batch.commit()


@pytest.fixture
def reads(monkeypatch):
    """Every batch of summaries and of shards the cache reads: (phase, kind, paths)."""
    seen: list[tuple[str, str, frozenset]] = []

    def recorded(kind, read):
        def wrapper(db, paths):
            seen.append((stats_cache.phase.get(), kind, frozenset(paths)))
            return read(db, paths)

        return wrapper

    monkeypatch.setattr(counters, "read_summaries", recorded("summaries", counters.read_summaries))
    monkeypatch.setattr(counters, "read_shards", recorded("shards", counters.read_shards))
    return seen


def cache_at(db, clock: list[float], delay: float = 0.2) -> stats_cache.StatsCache:
    cache = stats_cache.StatsCache(db, max_age=M, clock=lambda: clock[0], background=False)
    cache.delay = delay
    return cache


def test_copies_rolled_up_at_different_moments_of_one_slot_are_re_read_together(db, reads):
    old_a, old_b = "tick/a", "tick/b"
    establish(db, old_a, 1000.0, rate=1.0, writes=1000)  # established: age limit M
    establish(db, old_b, 1000.3, rate=1.0, writes=1000)
    clock = [1000.8]
    cache = cache_at(db, clock)  # delay 0.2: this instance's turn is 0.2 s into a roll-up slot
    cache.get([old_a, old_b])
    reads.clear()
    clock[0] = 1001.21  # the slot of M/2 that began at 1001 is 0.21 s old
    cache.get([old_a])
    assert [(phase, kind) for phase, kind, _ in reads if kind == "summaries"] == [("refresh", "summaries")]
    assert reads[0][2] == {old_a, old_b}  # b, rolled up 0.3 s later, is not left for a later tick
    assert {summary.as_of for summary in cache.get([old_a, old_b]).values()} == {1001.21}
    reads.clear()
    clock[0] = 1001.3  # within the tick: nothing is due, nothing is read
    cache.get([old_a, old_b])
    assert reads == []


def test_young_copies_due_within_one_tick_are_re_read_together_in_one_batch(db, reads):
    first, second, later = "tick/y1", "tick/y2", "tick/y3"
    # young: 50 writes at 10/s, 5 s of life, so a copy is used for at most 0.5 s
    for path, as_of in ((first, 1000.1), (second, 1000.15), (later, 1000.25)):
        establish(db, path, as_of, rate=10.0, writes=50)
    clock = [1000.3]
    cache = cache_at(db, clock, delay=0.4)
    assert cache.age_limit(cache.get([first, second, later])[first]) == pytest.approx(0.5)
    reads.clear()
    # the first copy is past its 0.5 s; the second will be within the tick (T = 0.1 s), the third not
    clock[0] = 1000.61
    cache.get([first])
    assert [(phase, kind) for phase, kind, _ in reads if kind == "summaries"] == [("refresh", "summaries")]
    assert reads[0][2] == {first, second}
    copies = cache.get([first, second, later])
    assert copies[first].as_of == copies[second].as_of == 1000.61  # summed from their shards, together
    assert copies[later].as_of == 1000.25


def test_no_decision_uses_a_copy_older_than_M_and_each_includes_every_write_before_then(db):
    rng = random.Random(7)
    paths = [f"bound/{n}" for n in range(4)]
    clock = [5000.0]
    for n, path in enumerate(paths):  # two established counters, two young ones
        establish(db, path, 5000.0, rate=1.0, writes=1000 if n < 2 else 5)
    committed = {path: [5000.0 - 1] * (1000 if n < 2 else 5) for n, path in enumerate(paths)}
    instances = [cache_at(db, clock, delay) for delay in (0.05, 0.4)]
    for _ in range(150):
        # mostly steady traffic, sometimes a pause longer than M
        clock[0] += rng.choice([0.03, 0.07, 0.2, 0.6]) if rng.random() < 0.9 else rng.uniform(M, 3 * M)
        path = rng.choice(paths)
        click(db, path)
        committed[path].append(clock[0])
        now = clock[0] + 0.001
        clock[0] = now
        cache = rng.choice(instances)
        for seen, summary in cache.get(rng.sample(paths, 3)).items():
            assert now - summary.as_of <= M
            assert summary.totals["clicks"] >= sum(t < now - M for t in committed[seen])
            assert summary.totals["clicks"] <= len(committed[seen])


def test_a_request_uses_a_young_copy_that_is_still_usable_and_the_background_refreshes_it(db, reads):
    young = "tick/new"
    establish(db, young, 3000.0, rate=10.0, writes=50)  # 5 s of life: used for at most 0.5 s
    clock = [3000.0]
    cache = cache_at(db, clock, delay=0.4)
    assert cache.get([young])[young].totals["clicks"] == 50
    for _ in range(3):  # another instance's clicks
        click(db, young)
    reads.clear()
    clock[0] = 3000.7  # older than its 0.5 s, well within M
    assert cache.get([young])[young].totals["clicks"] == 50  # the old copy: the request did not wait
    assert [(phase, kind) for phase, kind, _ in reads if kind == "summaries"] == [("refresh", "summaries")]
    assert cache.get([young])[young].totals["clicks"] == 53  # what the background read right after
    reads.clear()
    clock[0] = 3000.7 + M + 0.01  # older than M: now the request itself refreshes it
    click(db, young)
    assert cache.get([young])[young].totals["clicks"] == 54
    assert reads and reads[0][0] == "request"


def test_a_set_asked_again_is_handed_the_same_copies_until_one_of_them_changes_or_falls_due(db, reads):
    """The steady path's shortcut: no step per candidate while nothing changed, and never past a
    copy's due time or its M, nor past a refresh of any copy."""
    a, b = "tick/s1", "tick/s2"
    establish(db, a, 1000.0, rate=1.0, writes=1000)
    establish(db, b, 1000.0, rate=1.0, writes=1000)
    clock = [1000.3]
    cache = cache_at(db, clock)
    assert cache.get([a, b]) is not cache.get([a, b])  # read on the first's path: remembered from the second
    clock[0] = 1000.35
    first = cache.get([a, b])
    assert cache.get([a, b]) is first and cache.get((a, b)) is first  # the same set, however passed
    assert cache.get([b, a]) is not first  # another order is another set (its Copies' order)
    first.memo["seen"] = True
    clock[0] = 1001.21  # due: the slot of M/2 that began at 1001 is past this instance's delay
    reads.clear()
    due = cache.get([a, b])
    assert [kind for _, kind, _ in reads if kind == "summaries"] == ["summaries"]  # asked for its tick
    again = cache.get([a, b])
    assert again is not first and "seen" not in again.memo
    assert {summary.as_of for summary in again.values()} == {1001.21} and due is not again
    clock[0] = 1001.25
    assert cache.get([a, b]) is again
    click(db, a)  # a write changes no copy until it is read: the set stays as it was
    assert cache.get([a, b]) is again


def test_a_remembered_set_is_not_handed_out_once_a_tick_replaced_one_of_its_copies_early(db):
    """A tick gathers a young copy up to a tick before it is due; the sets holding it see the new
    copy at once, not at the old copy's due time."""
    old, young, other = "tick/g1", "tick/g2", "tick/g3"
    establish(db, old, 1000.0, rate=1.0, writes=1000)
    establish(db, young, 1000.1, rate=10.0, writes=50)  # usable for 0.5 s: due at 1000.6, gathered from 1000.5
    establish(db, other, 1000.05, rate=10.0, writes=50)  # due at 1000.55
    clock = [1000.3]
    cache = cache_at(db, clock)
    cache.get([old, young]), cache.get([other])
    clock[0] = 1000.31
    remembered = cache.get([old, young])
    assert cache.get([old, young]) is remembered and remembered[young].as_of == 1000.1
    clock[0] = 1000.56
    cache.get([other])  # due: its tick gathers the young copy as well
    clock[0] = 1000.57
    now = cache.get([old, young])
    assert now is not remembered and now[young].as_of == 1000.56


def test_an_empty_set_is_handed_empty_copies(db):
    assert cache_at(db, [1000.0]).get([]) == {}
