"""A throw-away PgBouncer in transaction mode in front of the tests' PostgreSQL, for the
scale test's round that runs Tranche as docs/scaling.md says to behind PgBouncer
(DB_PGBOUNCER=1): a server connection serves another client between transactions.
Debian's `pgbouncer` package provides the binary (`.ci/run` installs it)."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from tests.fakes.local_server import free_port, terminate


def pgbouncer_binary() -> str | None:
    return shutil.which("pgbouncer") or (
        "/usr/sbin/pgbouncer" if Path("/usr/sbin/pgbouncer").exists() else None
    )


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def throwaway_pgbouncer(server_url: str) -> Iterator[str]:
    """PgBouncer (pool_mode = transaction) in front of the server of `server_url`; yields
    `server_url` with its host and port replaced by PgBouncer's: every database of the
    server is reachable through it by name."""
    binary = pgbouncer_binary()
    if binary is None:
        raise RuntimeError("pgbouncer is not installed (apt-get install pgbouncer)")
    server = urlsplit(server_url)
    user = unquote(server.username or "postgres")
    password = unquote(server.password or "")
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="tranche-pgbouncer."))
    workdir.chmod(0o755)
    target = f"host={server.hostname or '127.0.0.1'} port={server.port or 5432}"
    if password:
        target += f" password={password}"
    (workdir / "users.txt").write_text(f'"{user}" ""\n')
    (workdir / "pgbouncer.ini").write_text(
        f"""[databases]
* = {target}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {workdir / "users.txt"}
admin_users = {user}
pool_mode = transaction
max_client_conn = 500
default_pool_size = 20
server_reset_query =
logfile = {workdir / "pgbouncer.log"}
pidfile = {workdir / "pgbouncer.pid"}
"""
    )
    # PgBouncer refuses to run as root: as root, it runs as nobody, which owns its folder.
    run_as: str | None = None
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        for path in [workdir, *workdir.iterdir()]:
            os.chown(path, nobody.pw_uid, nobody.pw_gid)
        run_as = "nobody"
    process = subprocess.Popen(
        [binary, str(workdir / "pgbouncer.ini")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        user=run_as,
    )
    try:
        deadline = time.monotonic() + 20
        while not _answers(port):
            if process.poll() is not None or time.monotonic() > deadline:
                log = (workdir / "pgbouncer.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"pgbouncer did not start on port {port}: {log}")
            time.sleep(0.05)
        yield urlunsplit(server._replace(netloc=f"{server.username or user}@127.0.0.1:{port}"))
    finally:
        terminate(process)
        shutil.rmtree(workdir, ignore_errors=True)


def pgbouncer_transactions(pgbouncer_url: str, database: str) -> int:
    """How many transactions PgBouncer has passed to `database` (its SHOW STATS)."""
    import psycopg

    console = urlunsplit(urlsplit(pgbouncer_url)._replace(path="/pgbouncer", query=""))
    with psycopg.connect(console, autocommit=True) as conn:
        cursor = conn.execute("SHOW STATS")
        names = [column.name for column in cursor.description or []]
        for row in cursor.fetchall():
            stats = dict(zip(names, row, strict=True))
            if stats["database"] == database:
                return int(stats["total_xact_count"])
    return 0
