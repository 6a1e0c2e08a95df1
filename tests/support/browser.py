"""Debian's headless Chromium, for checks of what a page really renders (installed by .ci/run).

One browser holds the page open and is asked for its DOM again and again, over the DevTools
protocol on a pipe (``--remote-debugging-pipe``: commands on fd 3, answers on fd 4, each a
JSON text ended by a NUL byte). A page that refreshes itself is thus watched from moment to
moment; a fresh browser per look (``--dump-dom``) costs seconds of start-up per moment, and
on a loaded box missed the few seconds being looked for.
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any

# Flags for a machine with no network: without the background-networking ones Chromium keeps
# trying to reach Google's hosts; a fresh profile each time.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium() -> str:
    path = shutil.which("chromium")
    assert path, "chromium is missing: `apt-get install -y chromium` (.ci/run installs it)"
    return path


# Runs the browser with the pipe ends given as its first two arguments on fds 3 and 4.
_ON_FDS_3_AND_4 = (
    "import os, sys; r, w = int(sys.argv[1]), int(sys.argv[2]); os.dup2(r, 3); os.dup2(w, 4); "
    "os.close(r); os.close(w); os.execv(sys.argv[3], sys.argv[3:])"
)


def _high(fd: int) -> int:
    """``fd`` moved to a number above 9, so putting the pipe ends on 3 and 4 cannot clobber one."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return moved


class LivePage:
    """``url`` open in one headless Chromium until closed; :meth:`dom` is its DOM now."""

    def __init__(self, url: str, timeout: float = 60) -> None:
        self.timeout = timeout
        self._profile = tempfile.TemporaryDirectory(prefix="chromium-")
        to_browser, self._out = (_high(fd) for fd in os.pipe())
        self._in, from_browser = (_high(fd) for fd in os.pipe())
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                _ON_FDS_3_AND_4,
                str(to_browser),
                str(from_browser),
                chromium(),
                *FLAGS,
                f"--user-data-dir={self._profile.name}",
                "--remote-debugging-pipe",
                "about:blank",
            ],
            pass_fds=(to_browser, from_browser),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        os.close(to_browser)
        os.close(from_browser)
        self._buffer = b""
        self._next_id = 0
        try:
            target = self._call("Target.createTarget", {"url": url})["targetId"]
            self._session = self._call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        except BaseException:
            self.close()
            raise

    def dom(self) -> str:
        """The page's DOM as its scripts have left it at this moment ("" while it is loading:
        between two documents there is no element to read)."""
        answer = self._call(
            "Runtime.evaluate",
            {"expression": "document.documentElement.outerHTML", "returnByValue": True},
            session=self._session,
        )
        return str(answer["result"].get("value") or "")

    def _call(self, method: str, params: dict[str, Any], session: str | None = None) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        os.write(self._out, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            while b"\0" in self._buffer:
                text, self._buffer = self._buffer.split(b"\0", 1)
                reply = json.loads(text)
                if reply.get("id") != self._next_id:
                    continue  # an event, or the answer to a call given up on
                assert "error" not in reply, f"Chromium refused {method}: {reply['error']}"
                return dict(reply["result"])
            left = deadline - time.monotonic()
            assert left > 0, f"Chromium did not answer {method} within {self.timeout:.0f} s"
            if select.select([self._in], [], [], left)[0]:
                chunk = os.read(self._in, 1 << 20)
                assert chunk, f"Chromium exited (status {self.proc.poll()}) before answering {method}"
                self._buffer += chunk

    def close(self) -> None:
        """Quit the browser (its process group killed if it does not quit within 10 s: the
        group holds only the browser and the renderers it started) and remove its profile."""
        try:
            os.write(self._out, json.dumps({"id": 0, "method": "Browser.close"}).encode() + b"\0")
        except OSError:
            pass  # it is gone already
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        for fd in (self._in, self._out):
            os.close(fd)
        self._profile.cleanup()

    def __enter__(self) -> LivePage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
