"""Watching the live slot board while flows run: its data readings, and what headless
Chromium renders from its page."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from support.browser import LivePage


@dataclass
class Board:
    """What the board showed: its data readings, and the DOM Chromium rendered from its page
    at a moment both flows held lanes of ``tag``."""

    readings: list[dict[str, Any]] = field(default_factory=list)
    scrapes: list[str] = field(default_factory=list)  # its /metrics, read beside each reading
    dom: str | None = None
    looks: int = 0  # how many times the browser's DOM was read
    render_error: str = ""  # why the browser stopped looking, if it failed


def holding(reading: dict[str, Any], tag: str) -> set[str]:
    """The flows holding slots of ``tag`` in one board reading."""
    view = next(v for v in reading["limits"] if v["tag"] == tag)
    return {h["flow"] for h in view["holders"]}


def rendered_lanes(dom: str, tag: str) -> set[str]:
    """Flows of the held lanes in the limit's section of a rendered page."""
    section = re.search(rf'<section class="limit" data-tag="{tag}">(.*?)</section>', dom, re.S)
    return set(re.findall(r'class="lane held[^"]*" data-flow="([^"]+)"', section.group(1))) if section else set()


def _read(url: str, running: Callable[[], bool], board: Board) -> None:
    """Read the board's data and its /metrics every 0.3 s, on a thread of its own beside the
    browser's."""
    while running():
        try:
            board.readings.append(httpx.get(f"{url}/api/board", timeout=5).json())
            board.scrapes.append(httpx.get(f"{url}/metrics", timeout=5).text)
        except httpx.HTTPError:
            pass
        time.sleep(0.3)


def _render(url: str, running: Callable[[], bool], board: Board, tag: str, flows: set[str]) -> None:
    """Hold the page open in Chromium and read its DOM every 0.25 s while ``running()``, until
    one shows all of ``flows`` holding ``tag`` lanes: the page's own refresh (every second,
    from ``/api/board``) is what draws each moment."""
    try:
        with LivePage(url) as page:
            while running() and board.dom is None:
                dom = page.dom()
                board.looks += 1
                if rendered_lanes(dom, tag) >= flows:
                    board.dom = dom
                time.sleep(0.25)
    except Exception as exc:  # a thread's failure, kept for the test's message
        board.render_error = repr(exc)


@contextmanager
def watching_board(
    url: str, running: Callable[[], bool], *, render: tuple[str, set[str]] | None = None
) -> Iterator[Board]:
    """Read the board at ``url`` while ``running()`` holds, on a thread; with
    ``render=(tag, flows)`` also render it in Chromium until ``flows`` all hold ``tag`` lanes.
    The threads stop and are joined (bounded) on leaving."""
    board = Board()
    left = threading.Event()

    def live() -> bool:
        return not left.is_set() and running()

    threads = [threading.Thread(target=_read, args=(url, live, board), daemon=True)]
    if render is not None:
        threads.append(threading.Thread(target=_render, args=(url, live, board, *render), daemon=True))
    for thread in threads:
        thread.start()
    try:
        yield board
    finally:
        left.set()
        for thread in threads:
            thread.join(timeout=60)


def scraped(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """A /metrics text, parsed by prometheus-client's own parser: (sample name, labels) -> value."""
    from prometheus_client.parser import text_string_to_metric_families

    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
