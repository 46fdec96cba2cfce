"""docs/deploy.md's production start-up, run as the page says, so that the page, the example
settings and the unit file cannot drift from the code.

The `tranche` commands come from the page itself (its block fenced as ```sh tested), and
run through deploy/tranche (the /usr/local/bin/tranche the page installs) with the settings
of deploy/tranche.env.example, on a fresh PostgreSQL database; then the web server starts
with the ExecStart of deploy/systemd/tranche-web.service, answers /api/health behind what
the proxy would send, and stops on SIGTERM with status 0, as systemd stops it."""

from __future__ import annotations

import getpass
import http.client
import json
import os
import queue
import re
import secrets
import shlex
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from tests.fakes.local_server import terminate
from tests.reliability.processes import free_port

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "deploy.md"
WRAPPER = ROOT / "deploy" / "tranche"
ENV_EXAMPLE = ROOT / "deploy" / "tranche.env.example"
WEB_UNIT = ROOT / "deploy" / "systemd" / "tranche-web.service"
PREFIX = ["sudo", "-u", "tranche", "tranche"]
# The port this test prefers for the web server (any free one under pytest-xdist).
PORT = 18500
# The operator's own host name, as step 5 has them put it in BASE_URL.
HOST = "portal.harbour-build.test"
ADMIN_PASSWORD = "a long passphrase for the first admin"

DATABASE_URL = os.environ.get("DATABASE_URL", "")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not DATABASE_URL.startswith("postgres"),
        reason="docs/deploy.md deploys on PostgreSQL; `make test-postgres` runs this",
    ),
]


def documented_commands() -> list[list[str]]:
    """The arguments of each `sudo -u tranche tranche …` line of the tested block(s). Any
    other line there would be a step the test silently skips, so there may be none."""
    blocks = re.findall(r"^```sh tested\n(.*?)^```", DOC.read_text(), flags=re.M | re.S)
    assert blocks, "docs/deploy.md has no ```sh tested block"
    commands = []
    for line in "".join(blocks).splitlines():
        words = shlex.split(line)
        assert words[: len(PREFIX)] == PREFIX, f"not a `tranche` command: {line}"
        commands.append(words[len(PREFIX) :])
    return commands


def web_unit_command(port: int) -> list[str]:
    """The unit's ExecStart, as arguments of `tranche`, on this test's port."""
    [line] = [ln for ln in WEB_UNIT.read_text().splitlines() if ln.startswith("ExecStart=")]
    program, *args = shlex.split(line.removeprefix("ExecStart="))
    assert program == "/opt/tranche/venv/bin/tranche"
    assert args[args.index("--port") + 1] == "8000"
    args[args.index("--port") + 1] = str(port)
    return args


def production_settings(path: Path, values: dict[str, str]) -> None:
    """deploy/tranche.env.example with the lines named in `values` changed, as step 5 has
    the operator edit it; every variable changed here must be a line of the example."""
    lines = ENV_EXAMPLE.read_text().splitlines()
    for name, value in values.items():
        matches = [i for i, line in enumerate(lines) if line.startswith(f"{name}=")]
        assert matches, f"deploy/tranche.env.example has no {name}= line"
        for i in matches:
            lines[i] = f"{name}={shlex.quote(value)}"
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture
def fresh_database() -> Iterator[str]:
    """A database of its own on the suite's PostgreSQL server, as step 4 creates one."""
    server = urlsplit(DATABASE_URL)
    name = f"tranche_deploy_{secrets.token_hex(4)}"
    admin_url = urlunsplit(server._replace(path="/postgres"))
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(server._replace(path=f"/{name}", query=""))
    finally:
        with psycopg.connect(admin_url, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def request(
    port: int, method: str, path: str, headers: dict[str, str], body: object = None
) -> tuple[int, dict[str, str], bytes]:
    """One request as the reverse proxy would make it; redirects are not followed."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        payload = None if body is None else json.dumps(body)
        if payload is not None:
            headers = {**headers, "Content-Type": "application/json"}
        connection.request(method, path, body=payload, headers=headers)
        answer = connection.getresponse()
        return answer.status, dict(answer.getheaders()), answer.read()
    finally:
        connection.close()


def test_the_documented_production_start_up_serves_over_https_and_stops_cleanly(
    tmp_path: Path, fresh_database: str
) -> None:
    var_dir = tmp_path / "var"
    var_dir.mkdir(mode=0o700)  # step 2: install -d -o tranche -g tranche -m 0700
    settings_file = tmp_path / "tranche.env"
    production_settings(
        settings_file,
        {
            "SECRET_KEY": secrets.token_urlsafe(50),
            "DATABASE_URL": fresh_database,
            "VAR_DIR": str(var_dir),
            "BASE_URL": f"https://{HOST}",
            # Somewhere that answers nothing: nothing here may reach real SMTP or Stripe.
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(free_port()),
            "EMAIL_HOST_USER": f"billing@{HOST}",
            "EMAIL_HOST_PASSWORD": secrets.token_urlsafe(16),
            "DEFAULT_FROM_EMAIL": f"Harbour Build Co <billing@{HOST}>",
            "STRIPE_SECRET_KEY": f"sk_live_{secrets.token_hex(12)}",
            "STRIPE_PUBLISHABLE_KEY": f"pk_live_{secrets.token_hex(12)}",
            "STRIPE_WEBHOOK_SECRET": f"whsec_{secrets.token_hex(12)}",
        },
    )
    with settings_file.open("a") as extra:
        extra.write(f"STRIPE_API_BASE=http://127.0.0.1:{free_port()}\n")
    host = HOST

    # /opt/tranche/venv/bin/tranche, for this checkout.
    program = tmp_path / "bin" / "tranche"
    program.parent.mkdir()
    program.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m tranche.cli "$@"\n')
    program.chmod(0o755)
    # What `sudo -u tranche` leaves of the environment: no setting leaks in from the test
    # run (its SECRET_KEY, sandbox, immediate tasks); the wrapper reads them all from the
    # file. TRANCHE_PASSWORD stands in for createuser's prompt (no terminal here).
    env = {
        "PATH": os.environ["PATH"],
        "LANG": "C.UTF-8",
        "PYTHONPATH": str(ROOT),
        "TRANCHE_ENV_FILE": str(settings_file),
        "TRANCHE_BIN": str(program),
        "TRANCHE_USER": getpass.getuser(),
        "TRANCHE_PASSWORD": ADMIN_PASSWORD,
    }

    def tranche(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["/bin/sh", str(WRAPPER), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )

    # Step 5 skipped (the example copied, only the database and the state folder set):
    # `check --deploy` refuses it and names every line still to edit, showing no secret.
    unedited = tmp_path / "unedited.env"
    production_settings(unedited, {"DATABASE_URL": fresh_database, "VAR_DIR": str(var_dir)})
    refused = subprocess.run(
        ["/bin/sh", str(WRAPPER), "check", "--deploy"],
        env={**env, "TRANCHE_ENV_FILE": str(unedited)},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    said = refused.stdout + refused.stderr
    assert refused.returncode != 0
    assert (
        "(tranche.E008) These settings still hold deploy/tranche.env.example's values: "
        + (
            "BASE_URL, DEFAULT_FROM_EMAIL, EMAIL_HOST, EMAIL_HOST_PASSWORD, EMAIL_HOST_USER, "
            "SECRET_KEY, STRIPE_PUBLISHABLE_KEY, STRIPE_SECRET_KEY, STRIPE_WEBHOOK_SECRET."
        )
        in said
    )
    assert "replace-with" not in said
    assert "replace-me" not in said

    commands = documented_commands()
    assert [args[0] for args in commands] == ["check", "migrate", "createuser", "worker"]
    for args in commands:
        result = tranche(*args)
        assert result.returncode == 0, f"tranche {shlex.join(args)}:\n{result.stderr}"
        if args[0] == "check":
            # Clean but for the stand-in Stripe server this test points at on purpose.
            issues = re.findall(r"\(([\w.]+\.[EWIC]\d+)\)", result.stdout + result.stderr)
            assert issues == ["tranche.W204"], result.stdout + result.stderr
        if args[0] == "createuser":
            email = args[args.index("--email") + 1]
            assert f"Created admin {email}" in result.stdout

    port = free_port(PORT)
    server = subprocess.Popen(
        ["/bin/sh", str(WRAPPER), *web_unit_command(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    output = server.stdout
    assert output is not None

    def read() -> None:
        for text in output:
            lines.put(text)
        lines.put("")  # the end: the server exited

    threading.Thread(target=read, daemon=True).start()
    try:
        line = lines.get(timeout=120)
        while line and "serving" not in line:
            line = lines.get(timeout=120)
        assert line, f"the web server exited with {server.wait()}: {server.stderr.read()}"  # type: ignore[union-attr]
        assert f"serving on http://127.0.0.1:{port}/" in line

        # Through the proxy: its Host, and X-Forwarded-Proto https.
        proxied = {"Host": host, "X-Forwarded-Proto": "https"}
        status, _, body = request(port, "GET", "/api/health", proxied)
        assert (status, json.loads(body)) == (200, {"status": "ok"})
        # HTTPS=1: a plain-http request is sent to https://, never served.
        status, headers, _ = request(port, "GET", "/api/health", {"Host": host})
        assert (status, headers["Location"]) == (301, f"https://{host}/api/health")
        # A host that is not BASE_URL's is refused.
        status, _, _ = request(port, "GET", "/api/health", {**proxied, "Host": "evil.example"})
        assert status == 400
        # The admin of step 6 signs in.
        credentials = {"email": "you@example.com", "password": ADMIN_PASSWORD}
        status, _, body = request(port, "POST", "/api/auth/token", proxied, credentials)
        assert status == 201, body

        server.send_signal(signal.SIGTERM)  # systemctl stop (KillMode=mixed)
        assert server.wait(timeout=60) == 0
        with pytest.raises(ConnectionRefusedError):
            request(port, "GET", "/api/health", proxied)
    finally:
        # Whatever failed above, stop it as systemd would: `run` stops its own children.
        if server.poll() is None:
            terminate(server, grace=30)
