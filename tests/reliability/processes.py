"""Real processes for the fault tests: a throw-away PostgreSQL cluster that may be stopped
and started (never the shared server), Tranche's own commands run as subprocesses
against it, and a small HTTP client that never raises."""

from __future__ import annotations

import atexit
import contextlib
import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parents[2]
PG_PORT = 55431  # the port this suite's throw-away cluster prefers


def free_port(preferred: int | None = None) -> int:
    # Under pytest-xdist two workers would both find the preferred port free and both
    # start on it (the second cluster or server then fails to bind): each takes its own.
    if preferred is not None and not os.environ.get("PYTEST_XDIST_WORKER"):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", preferred))
            except OSError:
                pass
            else:
                return preferred
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ThrowawayPostgres:
    """initdb in a temporary folder, on its own port, trust auth, fsync off."""

    def __init__(self) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not found:
            raise RuntimeError("No PostgreSQL binaries under /usr/lib/postgresql/*/bin")
        self.bindir = Path(found[-1]).parent
        self.port = free_port(PG_PORT)
        self.workdir = Path(tempfile.mkdtemp(prefix="tranche-faults-pg."))
        self.data = self.workdir / "data"
        self.as_owner: list[str] = []
        if os.getuid() == 0:  # initdb refuses root: the cluster belongs to postgres
            shutil.chown(self.workdir, "postgres")
            self.as_owner = ["runuser", "-u", "postgres", "--"]
        self._pg("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")

    def _pg(self, tool: str, *args: str) -> None:
        subprocess.run(
            [*self.as_owner, str(self.bindir / tool), *args],
            check=True,
            capture_output=True,
            timeout=60,
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.workdir} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c max_connections=60"
        )
        self._pg("pg_ctl", "-D", str(self.data), "-l", str(self.workdir / "log"), "-w",
                 "-o", options, "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._pg("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def query(self, database: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.url(database), autocommit=True) as conn:
            return conn.execute(sql, params).fetchall()

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop("immediate")
        shutil.rmtree(self.workdir, ignore_errors=True)


def tranche_env(database_url: str, var_dir: Path, **extra: str) -> dict[str, str]:
    """A production-like environment (DEBUG off, the sandbox allowed, tasks through the
    database queue) for Tranche's own processes, with this worktree's code."""
    keep = {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR"}
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(
        PYTHONPATH=str(ROOT),
        DATABASE_URL=database_url,
        SECRET_KEY="faults-" + "x" * 50,
        DEBUG="0",
        PAYMENTS_SANDBOX="1",
        TASKS_IMMEDIATE="0",
        VAR_DIR=str(var_dir),
        BUSINESS_NAME="Harbour Build Co",
        LOG_LEVEL="WARNING",
        TICK_MINUTES="60",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def tranche(*args: str, env: dict[str, str], timeout: float = 180) -> str:
    """Run one `tranche` command to its end; its stdout."""
    result = subprocess.run(
        [sys.executable, "-m", "tranche.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


# Makes an admin with an API token, a customer with a billing email and `projects`
# projects of three billable milestones each; prints them as JSON.
SEED = """
import json
from tests.factories import CustomerFactory, UserFactory, make_project
from tranche.accounts.models import Role
from tranche.accounts.services import token_create
admin = UserFactory.create(email="admin@tranche.example", role=Role.ADMIN)
customer = CustomerFactory.create(name="Acme Builders", billing_email="accounts@acme.example")
projects = [make_project(actor=admin, customer=customer, title=f"Job {n}") for n in range(%d)]
print(json.dumps({
    "token": token_create(user=admin),
    "milestones": [[p.pk, m.pk] for p in projects for m in p.milestones.order_by("position")],
}))
"""


def seed(env: dict[str, str], projects: int) -> dict[str, Any]:
    out = tranche("shell", "-c", SEED % projects, env=env)
    seeded: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return seeded


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """A long-running `tranche` process leading its own process group."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "tranche.cli", *args],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def children(pid: int) -> list[int]:
    try:
        found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except FileNotFoundError:
        return []
    return [int(child) for child in found]


@dataclass(frozen=True)
class Answer:
    status: int  # 0: no HTTP answer at all (refused, reset, timed out)
    content_type: str
    body: str

    def json(self) -> Any:
        return json.loads(self.body)


def http(
    method: str, url: str, *, token: str = "", body: Any = None, timeout: float = 15
) -> Answer:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Answer(
                response.status, response.headers.get("Content-Type", ""), response.read().decode()
            )
    except urllib.error.HTTPError as error:
        return Answer(error.code, error.headers.get("Content-Type", ""), error.read().decode())
    except (OSError, urllib.error.URLError):
        return Answer(0, "", "")


def wait_until(check: Any, timeout: float, step: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(step)
    return False


@dataclass(frozen=True)
class Installation:
    """A migrated database with the seed's admin, token, customer and projects."""

    url: str
    env: dict[str, str]
    token: str
    milestones: list[list[int]]  # [project id, milestone id], three per project


_cluster: ThrowawayPostgres | None = None
_template: dict[str, Any] = {}
TEMPLATE = "tranche_faults_template"
SEEDED_PROJECTS = 14


def shared_cluster() -> ThrowawayPostgres:
    """One throw-away cluster for this test process (removed when it exits)."""
    global _cluster
    if _cluster is None:
        _cluster = ThrowawayPostgres()
        _cluster.start()
        atexit.register(_cluster.remove)
    return _cluster


def installation(name: str, var_dir: Path, **env: str) -> Installation:
    """A database of its own, copied from a template migrated and seeded once."""
    cluster = shared_cluster()
    if not _template:
        url = cluster.create_database(TEMPLATE)
        template_env = tranche_env(url, var_dir)
        tranche("migrate", "--verbosity", "0", env=template_env)
        _template.update(seed(template_env, projects=SEEDED_PROJECTS))
    with psycopg.connect(cluster.url(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}"')
    url = cluster.url(name)
    return Installation(url, tranche_env(url, var_dir, **env), _template["token"],
                        _template["milestones"])  # fmt: skip
