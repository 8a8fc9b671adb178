"""A per-instance cache of counter summaries, so a decision reads nothing per request.

Freshness, with M = STATS_MAX_AGE_SECONDS (default 2): a decision at time t only ever uses a
summary whose `as_of` is at or after t - M, i.e. totals that include every write committed
before t - M (clocks of instances assumed within a few ms of each other). Writes after that are
missing from the decision, never counted twice, and are in a later summary: every roll-up
re-sums all shards, so totals converge to the exact sums. A request that finds a copy older than
M, or none (the instance just started, the offer was idle), refreshes it on its own path: that
is the only time a request waits for Firestore.

Everything else is refreshed in the background, on a shared tick, so that the statistics a
request sees change at most once per tick T = STATS_MIN_AGE_SECONDS (default 0.1), not once per
counter: at 100 candidates, copies replaced one at a time changed the candidate set's statistics
between most requests, and every change costs a decision its remembered probability. A tick
re-reads, in one batch (one get_all of the summaries, one roll-up of those due, one get_all of
the shards to sum), every copy that requests have used since it was read and that is due now or,
for a young copy, within the next T. The next tick starts T later at the earliest.

- Roll-ups are due per slot of M/2 (the roll-up leases' slots, shared/platform/counters.py): a
  summary is due once the slot of its `as_of` has passed, so the counters an instance uses all
  fall due at the same moment (a summary is still written at most once per slot; two writes may
  now come closer than M/2 across a slot's edge, when a request rolled one up late in a slot). An
  instance re-reads them at the slot's start plus its own delay (random, under M/4): the instance
  with the shortest delay rolls them up (one roller per counter per slot across all instances),
  the others read its result. So each instance reads each summary about once per M/2, `as_of`
  stays within about 3M/4 of now, and requests read nothing. While a roll-up is late (another
  instance holds the lease), its copy is read again every M/8.
- A young counter's copy is kept fresher. While the writes a copy misses would be a large share of
  all the counter has seen, they matter to a decision: the first clicks of a new offer are all
  there is to learn from. So a copy has an age limit L of STATS_LAG_FRACTION (default 0.1) of the
  counter's life at its current rate, `writes / rate`, at least T and one write's time, `1 / rate`
  (a counter of fewer than 10 writes is not re-read for a fraction of one expected write), at most
  M: for its first M / 0.1 = 20 s of traffic (and until a second roll-up has measured its rate) a
  counter's L is under M. The first request that finds its copy L old (or T after its last read,
  whichever is later) asks for a tick, and any tick gathers the young copies that reach L within
  the next T. The tick re-reads them from a roll-up or, when the summary is older than L (for one
  gathered early: would be at the next tick), a sum of its shards written nowhere. Until that
  refresh has finished, requests keep using the old copy. So while requests keep using a young
  copy, they use it at most L + T old (L unless the summary read was within T of L) plus the background
  refresh's own duration (a few round trips); after a pause in this instance's requests for the
  counter, the first request may use a copy up to M old (asking for its refresh), as it may for
  any counter. Before the shared tick, L bounded every decision strictly, at the price of requests
  refreshing young copies on their own path (one /sample in five at K = 100). What that gives up
  is T and a refresh's milliseconds of lag against the seconds of life L is measured in, or, after
  a pause, the M that every established counter's decisions live with; bench.lag measured the
  strict rule, not this one.

A set of counters a request asks for again is handed the same `Copies` (path -> summary, with a
`memo` for what readers compute from the whole set) while none of its copies has been replaced and
none is due or older than M: a steady request at 100 candidates takes no Python step per candidate
here, and the store computes the candidates' statistics once per set of copies.

`background=False` runs the refresher's work inline, right after the request that asked for it
(the capacity benchmark replays traffic in virtual time that way).
"""

import contextlib
import contextvars
import dataclasses
import math
import os
import random
import threading
import time
from collections.abc import Callable, Iterable
from typing import NamedTuple

from google.cloud import firestore

from shared.platform import counters, refresher, remembered
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


class Copies(dict):
    """path -> Summary, as StatsCache.get hands them to a request; `memo` keeps what readers
    compute from the whole set (the same object comes again until one of its copies changes)."""

    def __init__(self, *args):
        super().__init__(*args)
        self.memo: dict = {}


class Entry(NamedTuple):
    read_at: float
    summary: Summary
    refresh_at: float  # when a request asks for a tick to re-read it (the module's doc)
    gather_at: float  # from when a tick re-reads it with the others: a young copy's due within the tick


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
        self.tick = self.min_age
        self.rollup_every = self.max_age / 2
        self.delay = random.uniform(0, self.max_age / 4)  # this instance's turn after a roll-up is due
        self.clock = clock
        self.background = background
        self._entries: dict[str, Entry] = {}
        self._used: dict[str, float] = {}  # when a request last used each copy
        self._next_tick = -math.inf
        # The Copies handed out for each set of paths, while none of the copies is replaced and
        # until one falls due: a steady request costs no Python step per candidate.
        self._sets = remembered.BySet()
        self._lock = threading.Lock()
        self._refresher = refresher.Refresher("stats-refresh", self.refresh, order=sorted)

    def get(self, paths: Iterable[str]) -> Copies:
        """The counters' cached summaries; reads only those missing or older than M. Callers do not
        change what they are handed: a set asked for again is handed the same Copies."""
        key = tuple(paths)
        now = self.clock()
        with self._lock:
            known = self._sets.get(key, now)
            if known is not None:
                self._used.update(dict.fromkeys(known, now))
                return known
            generation = self._sets.generation
            entries = {p: self._entries.get(p) for p in key}
            self._used.update(dict.fromkeys(entries, now))
        unusable = [p for p, e in entries.items() if e is None or not self._within(e.summary, now, self.max_age)]
        if unusable:
            self._refresh(unusable, now)
            with self._lock:
                entries.update({p: self._entries[p] for p in unusable})
        due = [p for p, e in entries.items() if e.refresh_at <= now]
        if due and self._take_tick(now):
            self._ask(due)
        copies = Copies({path: entry.summary for path, entry in entries.items()})
        if entries and not unusable and not due:
            until = min(min(e.refresh_at, e.summary.as_of + self.max_age) for e in entries.values())
            with self._lock:
                self._sets.keep(key, generation, until, copies)
        return copies

    def _take_tick(self, now: float) -> bool:
        with self._lock:
            if now < self._next_tick:
                return False
            self._next_tick = now + self.tick
            return True

    def peek(self, path: str) -> Summary | None:
        """The cached summary without any I/O (inside a transaction, where waiting would hold its
        locks); None when absent, and then a background refresh is asked for."""
        with self._lock:
            entry = self._entries.get(path)
        if entry is None and self.background:
            self._ask([path])
        return entry.summary if entry else None

    def shards(self, path: str) -> int:
        """The counter's shard count as this instance knows it, without I/O (inside a transaction):
        fewer than the newest count is always safe, shard counts only grow."""
        summary = self.peek(path)
        return summary.shards if summary else counters.MIN_SHARDS

    def age_limit(self, summary: Summary) -> float:
        """How old a copy of this counter should be at most when a decision uses it, L in the
        module's doc (M for a counter that is not young)."""
        if summary.rate is None:
            return self.min_age
        if summary.rate <= 0:
            return self.max_age
        life = summary.totals.get(counters.WRITES, 0) / summary.rate
        return min(self.max_age, max(self.min_age, self.lag_fraction * life, 1 / summary.rate))

    @staticmethod
    def _within(summary: Summary, now: float, age: float) -> bool:
        return summary.as_of is not None and now - summary.as_of <= age

    def _slot(self, at: float) -> int:
        return int(at // self.rollup_every)  # as counters.roll_up_many numbers its leases

    def _due(self, summary: Summary, now: float) -> bool:
        return summary.as_of is None or self._slot(summary.as_of) < self._slot(now)

    def _entry(self, read_at: float, summary: Summary) -> Entry:
        if summary.as_of is None:
            return Entry(read_at, summary, read_at, read_at)
        rolled_up_again = (self._slot(summary.as_of) + 1) * self.rollup_every + self.delay
        limit = self.age_limit(summary)
        if limit >= self.max_age:
            at = max(rolled_up_again, read_at + self.max_age / 8)
            return Entry(read_at, summary, at, at)
        at = max(min(rolled_up_again, summary.as_of + limit), read_at + self.tick)
        return Entry(read_at, summary, at, at - self.tick)

    def _read_fresh(self, summary: Summary, now: float, early: bool) -> bool:
        """Whether a summary a refresh read is too old to serve as the copy: older than its age
        limit, or, for a copy gathered before it was due, than it may be at the next tick."""
        return not self._within(summary, now, self.age_limit(summary) - (self.tick if early else 0.0))

    def _store(self, path: str, read_at: float, summary: Summary) -> Entry:
        return self._store_all({path: summary}, read_at)[path]

    def _store_all(self, summaries: dict[str, Summary], read_at: float) -> dict[str, Entry]:
        """Keep the fresher copy: a background refresh that found a stale summary (its roll-up
        refused) must not replace what a request's refresh just summed, even if it read later.
        All under one lock, so a request sees the whole batch or none of it."""
        with self._lock:
            for path, summary in summaries.items():
                old = self._entries.get(path)
                if old is None or (summary.as_of or 0.0, read_at) >= (old.summary.as_of or 0.0, old.read_at):
                    self._entries[path] = self._entry(read_at, summary)
                    self._sets.changed()
            return {path: self._entries[path] for path in summaries}

    def _ask(self, paths: list[str]) -> None:
        if self.background:  # a failed refresh leaves the old entries; a later tick asks again
            self._refresher.ask(paths)
        else:
            self.refresh(paths)

    def refresh(self, paths: list[str]) -> None:
        """One tick (the background's work): re-read together every copy of `paths` still missing
        or due (one asked while a slow tick ran may have been re-read since) and every copy used
        since it was read that is due by now or, a young one, within the tick."""
        with _phase("refresh"):
            now = self.clock()
            with self._lock:
                asked = [p for p in paths if p not in self._entries or self._entries[p].gather_at <= now]
                due = [
                    path
                    for path, entry in self._entries.items()
                    if entry.gather_at <= now and self._used.get(path, -math.inf) >= entry.read_at
                ]
                early = {path for path in due if self._entries[path].refresh_at > now}
            if asked or due:
                self._refresh(list(dict.fromkeys([*asked, *due])), now, early)

    def _refresh(self, paths: list[str], now: float, early: frozenset | set = frozenset()) -> None:
        """Read the summaries, roll up those due, and sum the shards of those still too old
        (`_read_fresh`: another instance holds the roll-up's lease, or the counter is young),
        writing nothing for them."""
        summaries = counters.read_summaries(self.db, paths)
        due = {path: summary for path, summary in summaries.items() if self._due(summary, now)}
        with _phase("rollup"):
            rolled = counters.roll_up_many(self.db, due, now, self.rollup_every, self.derive) if due else {}
            behind = {
                path: summary.shards
                for path, summary in summaries.items()
                if rolled.get(path) is None and self._read_fresh(summary, now, path in early)
            }
            for path, totals in (counters.read_shards(self.db, behind) if behind else {}).items():
                rolled[path] = dataclasses.replace(summaries[path], totals=totals, as_of=now)
        self._store_all({path: rolled.get(path) or summary for path, summary in summaries.items()}, now)


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
