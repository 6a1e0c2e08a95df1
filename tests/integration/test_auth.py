"""Against a Prefect server with an auth string (as self-hosted production servers run): an
unauthenticated request is refused; with the credentials set, both flows, `slots`,
`slots history`, `limits sync/check` and the live board work; without them each command says
so in one line; the credentials appear in no output, log or process command line."""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from support import ROOT, Stack, command_lines, free_port, linked_data_dir, run_cli, script, wait_for_text

pytestmark = pytest.mark.integration

SECRET = "etl-admin:s3cr3t-Auth-String-42"


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from local_server.prefect_server import LocalPrefectServer

    home = tmp_path_factory.mktemp("auth") / "prefect"
    server = LocalPrefectServer(home=home, port=free_port(), auth_string=SECRET)
    assert server.start()
    try:
        server.wait_healthy(120)
        yield server.api_url
    finally:
        server.stop()
        log = (home / "server.log").read_text(errors="replace")
        assert SECRET not in log and "s3cr3t" not in log, "the auth string is in the server's log"


def test_the_whole_journey_works_with_the_credentials_and_fails_clearly_without(
    auth_server: str, stack: Stack, tmp_path: Path
) -> None:
    anonymous = httpx.post(f"{auth_server}/flows/filter", json={}, timeout=10)
    assert anonymous.status_code == 401, "the server answered a request with no credentials"

    data = linked_data_dir(stack, tmp_path)
    env = stack.env(PREFECT_API_URL=auth_server, PREFECT_API_AUTH_STRING=SECRET, ETL_DATA_DIR=str(data))
    outputs: list[str] = []

    def ok(*args: str, timeout: float = 300) -> str:
        done = run_cli(*args, env=env, timeout=timeout)
        outputs.append(done.stdout + done.stderr)
        assert done.returncode == 0, f"{args}: {done.stdout[-1500:]}{done.stderr[-1500:]}"
        return done.stdout

    ok("limits", "sync")
    assert "ok: every factory tag has an active limit" in ok("limits", "check")
    ok("ingest", "--table", "regions", "--table", "orders")
    ok("reports", "--report", "revenue_by_month")
    assert "tag:database" in ok("slots")
    assert "every limit held" in ok("slots", "history", "--since", "1h")

    board_port = free_port()
    log = tmp_path / "board.log"
    board = subprocess.Popen(
        [script("slots"), "board", "--port", str(board_port)],
        stdout=open(log, "w"),
        stderr=subprocess.STDOUT,
        env=env,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
    )
    try:
        wait_for_text(log, "slot board:", board, timeout=60)
        url = f"http://127.0.0.1:{board_port}/api/board"
        for _ in range(50):
            try:
                refused = httpx.get(url, timeout=5)
                break
            except httpx.ConnectError:
                continue
        assert refused.status_code == 401 and refused.headers.get("www-authenticate", "").startswith("Basic")
        basic = "Basic " + base64.b64encode(SECRET.encode()).decode()
        reading = httpx.get(url, headers={"Authorization": basic}, timeout=10)
        assert reading.status_code == 200 and {v["tag"] for v in reading.json()["limits"]} == {"database", "api"}
        assert all(SECRET.encode() not in c for c in command_lines()), "the auth string is on a command line"
    finally:
        board.terminate()
        board.wait(timeout=30)
    outputs.append(log.read_text())

    no_creds = {k: v for k, v in env.items() if k != "PREFECT_API_AUTH_STRING"}
    for args in (("slots",), ("limits", "check"), ("slots", "history", "--since", "1h")):
        refused_run = run_cli(*args, env=no_creds)
        outputs.append(refused_run.stdout + refused_run.stderr)
        assert refused_run.returncode == 2, f"{args}: {refused_run.stdout}{refused_run.stderr}"
        lines = refused_run.stderr.strip().splitlines()
        assert len(lines) == 1 and "refused the request (HTTP 401)" in lines[0], (args, refused_run.stderr)
        assert "PREFECT_API_AUTH_STRING" in lines[0]
    assert not any(SECRET in text or "s3cr3t" in text for text in outputs), "the auth string was printed"


def test_an_api_key_goes_as_a_bearer_token_and_a_refusal_is_one_line(stack: Stack) -> None:
    """PREFECT_API_KEY (Prefect Cloud's credential) travels as ``Authorization: Bearer``, as
    Prefect's own client sends it; a server that refuses it gets one line, without the key.
    The server here is a recorder on loopback that answers /health as Prefect does and 401 to
    everything else."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: list[str] = []

    class Recorder(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", 0)))
            if self.path == "/api/health":
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"true")
                return
            seen.append(self.headers.get("Authorization", ""))
            self.send_response(401)
            self.end_headers()

        do_GET = do_POST = _answer

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    key = "pnu_k3yXq9-test"
    try:
        api = f"http://127.0.0.1:{server.server_address[1]}/api"
        for args in (("slots",), ("limits", "check")):
            refused = run_cli(*args, env=stack.env(PREFECT_API_URL=api, PREFECT_API_KEY=key), timeout=60)
            assert refused.returncode == 2, f"{args}: {refused.stdout}{refused.stderr}"
            lines = refused.stderr.strip().splitlines()
            assert len(lines) == 1 and "refused the request (HTTP 401)" in lines[0], (args, refused.stderr)
            assert key not in refused.stdout + refused.stderr
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
    assert seen and set(seen) == {f"Bearer {key}"}, seen
