"""The latest reading of the slots, shared: the board's page and data, ``/metrics`` and the
watchdog all take it from here, so one read of the Prefect server serves every one of them
(a scrape or a second open page adds no request to the server)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from common.resources import Registry
from slot_tools.model import Snapshot
from slot_tools.snapshot import take_snapshot

MAX_AGE_SECONDS = 1.0  # the board redraws about once a second: a reading this fresh serves it


class Readings:
    """Takes a reading at most every ``max_age`` seconds, whoever asks; every new reading is
    passed to each of ``listeners`` (the metrics count new holders' waits from it)."""

    def __init__(
        self,
        registry: Registry,
        api_url: str,
        max_age: float = MAX_AGE_SECONDS,
        read: Callable[[Registry, str], Snapshot] = take_snapshot,
    ) -> None:
        self.registry = registry
        self.api_url = api_url
        self.max_age = max_age
        self.reads = 0  # how many readings were taken from the server
        self.listeners: list[Callable[[Snapshot], None]] = []
        self._read = read
        self._lock = threading.Lock()
        self._latest: Snapshot | None = None
        self._at = 0.0

    def latest(self, max_age: float | None = None) -> Snapshot:
        """A reading no older than ``max_age`` (default the cache's), taken now if needed; one
        reader at a time, so callers arriving together share one read."""
        limit = self.max_age if max_age is None else max_age
        with self._lock:
            if self._latest is None or time.monotonic() - self._at > limit:
                self._latest = self._read(self.registry, self.api_url)
                self._at = time.monotonic()
                self.reads += 1
                for listener in self.listeners:
                    listener(self._latest)
            return self._latest

    def fresh(self) -> Snapshot:
        """A reading taken now (what a repair confirms against)."""
        return self.latest(max_age=0.0)
