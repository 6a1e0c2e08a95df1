"""Debian's headless Chromium, for checks of what a page really renders (installed by .ci/run)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile

# Flags for a machine with no network: without the background-networking ones Chromium keeps
# trying to reach Google's hosts; a fresh profile each time.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium() -> str:
    path = shutil.which("chromium")
    assert path, "chromium is missing: `apt-get install -y chromium` (.ci/run installs it)"
    return path


def chromium_dom(url: str, timeout: float = 60) -> str:
    """The DOM of ``url`` after its scripts ran (``--dump-dom``)."""
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        done = subprocess.run([chromium(), *FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
                              capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def chromium_screenshot(url: str, path: str, size: str = "1300,900", timeout: float = 60) -> None:
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        subprocess.run([chromium(), *FLAGS, f"--user-data-dir={profile}", f"--screenshot={path}",
                        f"--window-size={size}", url], capture_output=True, timeout=timeout,
                       stdin=subprocess.DEVNULL, check=True)
