"""A loop of this process in a background thread while a block runs: the stack's supervisor,
the slot watchdog, the slot ledger's keeper, a benchmark's sampler. The loop gets an event
and returns once it is set; leaving the block sets it and waits (bounded) for the loop to end."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def in_background(loop: Callable[[threading.Event], None], name: str, join_timeout: float) -> Iterator[None]:
    """Run ``loop(stop)`` in a daemon thread named ``name`` while the block runs."""
    stop = threading.Event()
    thread = threading.Thread(target=loop, args=(stop,), name=name, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=join_timeout)
