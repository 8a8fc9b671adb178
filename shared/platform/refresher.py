"""A per-instance cache's background refresh: one daemon thread that refreshes the keys requests ask
for, each key once however many requests ask while it is pending, so a request never waits on it.
A failed refresh leaves the cache's old entries; `failed(keys)` lets the cache decide when to ask
again."""

import threading
from collections.abc import Callable, Hashable

from shared.platform.log import log


class Refresher:
    def __init__(
        self,
        name: str,
        refresh: Callable[[list], None],
        failed: Callable[[list], None] = lambda keys: None,
        order: Callable[[set], list] = list,
    ):
        self.name = name  # the thread's, and the warning's when a refresh fails
        self.refresh = refresh
        self.failed = failed
        self.order = order  # the pending keys as one refresh takes them
        self._pending: set = set()
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None

    def ask(self, keys: list[Hashable]) -> None:
        with self._lock:
            fresh = [key for key in keys if key not in self._pending]
            if not fresh:
                return
            self._pending.update(fresh)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._pending:
                    self._wake.wait()
                keys, self._pending = self.order(self._pending), set()
            try:
                self.refresh(keys)
            except Exception:
                log("WARNING", f"{self.name} failed", exc_info=True, keys=len(keys))
                self.failed(keys)
