"""A per-instance cache of counter summaries, so a decision reads nothing per request.

Freshness, with M = STATS_MAX_AGE_SECONDS (default 2): a decision at time t only ever uses a
summary whose `as_of` is at or after t - M, i.e. totals that include every write committed
before t - M (clocks of instances assumed within a few ms of each other). Writes after that are
missing from the decision, never counted twice, and are in a later summary: every roll-up
re-sums all shards, so totals converge to the exact sums.

How it stays fresh without reading per request:
- a roll-up is due when the summary is M/2 old (`rollup_every`). An instance re-reads a summary
  in the background once it is due plus the instance's own delay (random, under M/4): the
  instance with the shortest delay finds it due and rolls it up (shared/platform/counters.py: one roller
  per counter per M/2 across all instances), the others read its result. So each instance reads
  each summary about once per M/2, `as_of` stays within about 3M/4 of now, and requests read
  nothing;
- a young counter is read fresher. While the writes a copy misses would be a large share of all
  the counter has seen, they matter to a decision: the first clicks of a new offer are all there
  is to learn from. So a copy is usable for at most STATS_LAG_FRACTION (default 0.1) of the
  counter's life at its current rate, `writes / rate`, and at least STATS_MIN_AGE_SECONDS
  (default 0.1) and one write's time, `1 / rate` (a counter of fewer than 1 / 0.1 = 10 writes is
  not re-read for less than one expected write: at 100 candidates most offers are written less than
  once a second, and re-reading their shards for a fraction of a write was one /sample in five):
  for its first M / 0.1 = 20 s of traffic (and until a second roll-up has measured its rate) a
  counter's copy is younger than 10 % of its life. Those copies come from a shard sum
  or a roll-up on the request path: more reads while a counter is young, none once it is not
  (bench/capacity.py prints the cost of a launch);
- a request that finds a copy too old to use (the instance just started, or the offer was idle)
  refreshes it synchronously, rolling it up when due; when another instance holds the roll-up
  lease, it sums the shards itself without writing.

`background=False` runs the refresher's work inline, right after the request that asked for it
(the capacity benchmark replays traffic in virtual time that way).
"""

import contextlib
import contextvars
import dataclasses
import os
import random
import threading
import time
from collections.abc import Callable, Iterable

from google.cloud import firestore

from shared.platform import counters, refresher
from shared.platform.counters import Summary
from shared.platform.firestore import PerClient

DEFAULT_MAX_AGE = 2.0
DEFAULT_LAG_FRACTION = 0.1
DEFAULT_MIN_AGE = 0.1
# Which part of the code is talking to Firestore: the capacity benchmark attributes reads by it.
phase: contextvars.ContextVar[str] = contextvars.ContextVar("stats_phase", default="request")


def _positive_from_env(name: str, default: float) -> float:
    value = float(os.environ.get(name, default))
    if not value > 0:
        raise ValueError(f"{name} must be a positive number")
    return value


def max_age_from_env() -> float:
    return _positive_from_env("STATS_MAX_AGE_SECONDS", DEFAULT_MAX_AGE)


class StatsCache:
    def __init__(
        self,
        db: firestore.Client,
        max_age: float | None = None,
        clock: Callable[[], float] = time.time,
        background: bool = True,
        derive: counters.Derive | None = None,
    ):
        self.db = db
        self.derive = derive  # the roll-ups' hook (shared/platform/counters.py)
        self.max_age = max_age if max_age is not None else max_age_from_env()
        self.lag_fraction = _positive_from_env("STATS_LAG_FRACTION", DEFAULT_LAG_FRACTION)
        self.min_age = min(self.max_age, _positive_from_env("STATS_MIN_AGE_SECONDS", DEFAULT_MIN_AGE))
        self.rollup_every = self.max_age / 2
        self.delay = random.uniform(0, self.max_age / 4)  # this instance's turn after a roll-up is due
        self.clock = clock
        self.background = background
        self._entries: dict[str, tuple[float, Summary]] = {}
        self._lock = threading.Lock()
        self._refresher = refresher.Refresher("stats-refresh", self.refresh, order=sorted)

    def get(self, paths: Iterable[str]) -> dict[str, Summary]:
        """The counters' cached summaries; reads only those missing or too old to use."""
        paths = list(dict.fromkeys(paths))
        now = self.clock()
        with self._lock:
            entries = {p: self._entries.get(p) for p in paths}
        unusable = [p for p, e in entries.items() if e is None or not self._usable(e[1], now)]
        if unusable:
            self._refresh(unusable, now, strict=True)
            with self._lock:
                entries.update({p: self._entries[p] for p in unusable})
        ageing = [p for p, e in entries.items() if self._ageing(e, now)]
        if ageing:
            self._ask(ageing)
        return {path: entries[path][1] for path in paths}

    def _ageing(self, entry: tuple[float, Summary], now: float) -> bool:
        """Re-read a summary once the next roll-up is due (someone has done it, or this refresh
        will), each instance at its own small delay so that one of them rolls up and the others
        read the result; at most every M/8 while a roll-up is late."""
        read_at, summary = entry
        due_at = (summary.as_of or 0.0) + self.rollup_every + self.delay
        return now >= due_at and now - read_at >= self.max_age / 8

    def peek(self, path: str) -> Summary | None:
        """The cached summary without any I/O (inside a transaction, where waiting would hold its
        locks); None when absent, and then a background refresh is asked for."""
        with self._lock:
            entry = self._entries.get(path)
        if entry is None and self.background:
            self._ask([path])
        return entry[1] if entry else None

    def shards(self, path: str) -> int:
        """The counter's shard count as this instance knows it, without I/O (inside a transaction):
        fewer than the newest count is always safe, shard counts only grow."""
        summary = self.peek(path)
        return summary.shards if summary else counters.MIN_SHARDS

    def age_limit(self, summary: Summary) -> float:
        """How old a copy of this counter may be when a decision uses it (see the module's doc)."""
        if summary.rate is None:
            return self.min_age
        if summary.rate <= 0:
            return self.max_age
        life = summary.totals.get(counters.WRITES, 0) / summary.rate
        return min(self.max_age, max(self.min_age, self.lag_fraction * life, 1 / summary.rate))

    def _usable(self, summary: Summary, now: float) -> bool:
        return summary.as_of is not None and now - summary.as_of <= self.age_limit(summary)

    def _due(self, summary: Summary, now: float) -> bool:
        return summary.as_of is None or now - summary.as_of >= self.rollup_every

    def _store(self, path: str, read_at: float, summary: Summary) -> tuple[float, Summary]:
        """Keep the fresher copy: a background refresh that found a stale summary (its roll-up
        refused) must not replace what a request's refresh just summed, even if it read later."""
        with self._lock:
            current = self._entries.get(path)
            if current is None or (summary.as_of or 0.0, read_at) >= (current[1].as_of or 0.0, current[0]):
                self._entries[path] = (read_at, summary)
            return self._entries[path]

    def _ask(self, paths: list[str]) -> None:
        if self.background:  # a failed refresh leaves the old entries; the next request asks again
            self._refresher.ask(paths)
        else:
            self.refresh(paths)

    def refresh(self, paths: list[str]) -> None:
        """Read the summaries again and roll up those that are due (the background's work)."""
        with _phase("refresh"):
            self._refresh(paths, self.clock(), strict=False)

    def _refresh(self, paths: list[str], now: float, strict: bool) -> None:
        summaries = counters.read_summaries(self.db, paths)
        due = {path: summary for path, summary in summaries.items() if self._due(summary, now)}
        with _phase("rollup"):
            rolled = counters.roll_up_many(self.db, due, now, self.rollup_every, self.derive) if due else {}
            # Another instance is rolling these up: a request that cannot use the old copy sums
            # their shards here, writing nothing.
            behind = {
                path: summary.shards
                for path, summary in summaries.items()
                if rolled.get(path) is None and strict and not self._usable(summary, now)
            }
            for path, totals in (counters.read_shards(self.db, behind) if behind else {}).items():
                rolled[path] = dataclasses.replace(summaries[path], totals=totals, as_of=now)
        for path, summary in summaries.items():
            self._store(path, now, rolled.get(path) or summary)


@contextlib.contextmanager
def _phase(name: str):
    token = phase.set(name)
    try:
        yield
    finally:
        phase.reset(token)


_shared = PerClient(lambda db, derive: StatsCache(db, derive=derive))


def for_db(db: firestore.Client, derive: counters.Derive | None = None) -> StatsCache:
    """The process-wide cache of this client and roll-up hook (one per deployed instance)."""
    return _shared.get(db, derive)
