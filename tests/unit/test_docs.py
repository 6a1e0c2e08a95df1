"""What the README and the docs print is what the repository does.

Every `uv run ...` command they show (in a shell block or inline) names an installed command,
its subcommands and its flags: each is checked against the command's own ``--help``, as a user
typing it would meet it. Commands that need a running server stay covered by the tests that run
them. Every Python snippet of the README is the code of the file it names, line for line.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

from support import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BIN = Path(sys.executable).parent
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
INLINE = re.compile(r"`(uv run [^`]+)`")


def documented_commands(text: str) -> list[str]:
    """The `uv run ...` commands of a Markdown text: one per shell line, and each inline one."""
    commands = []
    for lang, body in FENCE.findall(text):
        if lang in ("bash", "sh", "shell", "console"):
            lines = [line.split(" #", 1)[0] for line in body.splitlines()]
            commands += [part.strip() for line in lines for part in re.split(r"&&|;|\|", line)]
    commands += INLINE.findall(FENCE.sub("", text))
    return [c.split(" #", 1)[0].strip() for c in commands if c.strip().startswith("uv run ")]


def _help_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API", "ETL_"))}
    env.update(COLUMNS="250", NO_COLOR="1", TERM="dumb", DO_NOT_TRACK="1")
    return env


@cache
def help_text(argv: tuple[str, ...]) -> tuple[int, str]:
    """The exit status and output of ``argv --help``."""
    done = subprocess.run(
        [*argv, "--help"], capture_output=True, text=True, timeout=60, env=_help_env(), stdin=subprocess.DEVNULL
    )
    return done.returncode, done.stdout + done.stderr


def _lists_command(text: str, word: str) -> bool:
    """Whether a help text lists ``word`` as a subcommand (Typer's box, or argparse's braces)."""
    for line in text.splitlines():
        first = line.strip(" │|").split(maxsplit=1)
        if first and first[0] == word:
            return True
    return bool(re.search(r"\{[^}]*\b" + re.escape(word) + r"\b[^}]*\}", text))


def check_command(command: str) -> str | None:
    """None when ``command`` names a real command, subcommands and flags; else what is wrong."""
    words = shlex.split(command)[2:]  # after `uv run`
    if words[:2] == ["python", "-m"]:
        argv: tuple[str, ...] = (sys.executable, "-m", words[2])
        rest = words[3:]
    else:
        script = BIN / words[0]
        if not script.exists():
            return f"no command {words[0]!r} is installed"
        argv, rest = (str(script),), words[1:]
    for word in rest:
        if word.startswith("-"):
            break
        status, text = help_text(argv)
        if not _lists_command(text, word):
            break  # an argument, not a subcommand
        argv = (*argv, word)
    status, text = help_text(argv)
    if status != 0:
        return f"`{' '.join(argv[1:] or argv)} --help` exits {status}: {text[-300:]}"
    for flag in (w.split("=", 1)[0] for w in rest if w.startswith("-")):
        if not re.search(r"(?<![\w-])" + re.escape(flag) + r"(?![\w-])", text):
            return f"its help does not offer {flag}"
    return None


def _all_commands() -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        for command in documented_commands(page.read_text(encoding="utf-8")):
            if (page.name, command) not in found:
                found.append((page.name, command))
    return found


def test_the_pages_show_commands_to_check() -> None:
    pages = {page for page, _ in _all_commands()}
    assert {"README.md", "operating.md", "limits.md", "tests.md"} <= pages, pages


@pytest.mark.parametrize(("page", "command"), _all_commands())
def test_every_documented_command_and_flag_exists(page: str, command: str) -> None:
    problem = check_command(command)
    assert problem is None, f"{page}: `{command}`: {problem}"


def test_a_renamed_flag_or_command_is_caught() -> None:
    assert check_command("uv run slots history --since 1h") is None
    assert check_command("uv run slots history --sinc 1h") == "its help does not offer --sinc"
    assert check_command("uv run slotz") == "no command 'slotz' is installed"


def test_the_readmes_python_snippets_are_the_code_of_the_files_they_name() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    checked = 0
    for match in FENCE.finditer(readme):
        if match.group(1) != "python":
            continue
        named = re.findall(r"`([\w/.-]+\.py)`", readme[: match.start()])
        assert named, "a Python snippet of the README names no file before it"
        source = (ROOT / named[-1]).read_text(encoding="utf-8").splitlines()
        at = 0
        for line in (x for x in match.group(2).splitlines() if x.strip()):
            assert line in source[at:], f"README snippet line not in {named[-1]} (in order): {line!r}"
            at = source.index(line, at) + 1
        checked += 1
    assert checked >= 2
