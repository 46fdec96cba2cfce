"""`tranche run` with two gunicorn worker processes: each counts the requests it
answered, and a scrape, whichever process answers it, adds them all up; with
LOG_FORMAT=json the access log is JSON lines carrying each response's request id and no
pay token."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

TOKEN = "multi-process-metrics-token-0c1d2e3f"
PAY_TOKEN = "Zk3QmP9vX2wLn7RtYb5HcJe1GfUsI4oKdE8TpAr"


def _port() -> int:
    # This suite's range (18700-18799); the first one free.
    for port in range(18760, 18800):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 18760-18799")


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str, dict[str, str]]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read().decode(), dict(answer.headers)
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read().decode(), dict(refused.headers)


def _login_count(text: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "tranche_http_requests_total" and sample.labels == {
                "route": "/login/",
                "method": "GET",
                "status": "200",
            }:
                return sample.value
    return 0.0


@pytest.mark.slow
def test_two_processes_counts_add_up_and_the_access_log_is_json(tmp_path: Path) -> None:
    port = _port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"SECRET_KEY", "DATABASE_URL", "HTTPS", "TASKS_IMMEDIATE", "DEBUG"}
    }
    env.update(
        DEBUG="0",
        VAR_DIR=str(tmp_path),
        PAYMENTS_SANDBOX="1",
        METRICS_TOKEN=TOKEN,
        LOG_FORMAT="json",
    )
    # A file of an earlier run, which the start must not count again.
    stale = tmp_path / "prometheus"
    stale.mkdir(mode=0o700)
    (stale / "counter_1.db").write_bytes(b"left over")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tranche.cli",
            "run",
            "--no-worker",
            "--workers",
            "2",
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        while line and "serving" not in line:
            line = server.stdout.readline()
        assert "serving" in line, server.stderr.read() if server.stderr else ""
        base = f"http://127.0.0.1:{port}"

        # Four at a time, each on its own connection: a process busy with one cannot take
        # the next, so both answer some (rounds repeat until both have, or 5 are done).
        sent = 0
        folder = tmp_path / "prometheus"
        with ThreadPoolExecutor(max_workers=4) as pool:
            for _ in range(5):
                statuses = list(pool.map(lambda _: _get(f"{base}/login/")[0], range(20)))
                assert statuses == [200] * 20
                sent += 20
                if len(list(folder.glob("counter_*.db"))) == 2:
                    break
        status, _, headers = _get(f"{base}/pay/{PAY_TOKEN}", {"X-Request-ID": "probe-pay-1"})
        assert (status, headers["X-Request-ID"]) == (404, "probe-pay-1")

        counts = set()
        for _ in range(6):
            status, text, _ = _get(f"{base}/metrics", {"Authorization": f"Bearer {TOKEN}"})
            assert status == 200
            counts.add(_login_count(text))
        assert counts == {float(sent)}
        files = {p.name for p in folder.glob("counter_*.db")}
        assert "counter_1.db" not in files
        assert len(files) == 2, files  # both processes answered some
        assert _get(f"{base}/metrics")[0] == 401
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        out, err = server.communicate(timeout=60)

    access = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
    [pay] = [x for x in access if x["logger"] == "gunicorn.access" and "/pay/" in x["message"]]
    assert pay["request_id"] == "probe-pay-1"
    assert "/pay/[redacted]" in pay["message"]
    assert PAY_TOKEN not in out + err
    assert len([x for x in access if "/login/" in x["message"]]) == sent
