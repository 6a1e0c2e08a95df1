"""Programs on a pseudo-terminal, as a user runs them (colours, live displays, Ctrl-C)."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import threading
from pathlib import Path

from support.cli import ROOT


def fresh_terminal_env(home: Path) -> dict[str, str]:
    """A terminal with nothing exported: no PREFECT_*, ETL_*, DO_NOT_TRACK or CI variable, and
    a HOME of its own (Prefect shows its telemetry notice once per home, in a terminal)."""
    from prefect._internal.analytics.ci_detection import CI_ENV_VARS

    drop = set(CI_ENV_VARS) | {"DO_NOT_TRACK"}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "ETL_")) and k not in drop}
    home.mkdir(parents=True, exist_ok=True)
    env["HOME"] = str(home)
    return env


class Terminal:
    """A process on a pseudo-terminal, as a user runs it; everything it prints goes to a file."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path) -> None:
        master, slave = pty.openpty()
        self.log = log
        log.touch()
        self.proc = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=ROOT, start_new_session=True
        )
        os.close(slave)
        self._reader = threading.Thread(target=self._copy, args=(master,), daemon=True)
        self._reader.start()

    def _copy(self, master: int) -> None:
        with open(self.log, "ab") as out:
            while True:
                try:
                    data = os.read(master, 4096)
                except OSError:  # the terminal closed
                    break
                if not data:
                    break
                out.write(data)
                out.flush()
        os.close(master)

    @property
    def text(self) -> str:
        return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", self.log.read_text(errors="replace"))
