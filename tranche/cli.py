"""The `tranche` command: `run`, and Django's management commands for everything else.

tranche run [--host H] [--port P]   migrate, collect static, serve with gunicorn and run
                                    the background worker beside it (--no-migrate: check
                                    that migrations were applied instead of applying them)
tranche <command> …                 any management command: worker, tick, reconcile,
                                    demo, createuser, token, migrate, check --deploy, …
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any, cast

from tranche.core.env import default_var_dir, private_dir

# How long a child may take to stop once asked before it is killed.
STOP_TIMEOUT_SECONDS = 15


def _local_secret_key(var_dir: Path) -> str:
    """A secret kept under var/ so a local install needs no configuration and sessions
    survive restarts. Only used on the default SQLite database: a deployment with its
    own DATABASE_URL must set SECRET_KEY itself."""
    path = var_dir / "secret_key"
    if not path.exists():
        var_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(50))
    return path.read_text().strip()


# The operator's long jobs: a migration that builds an index, a dump of a large table.
# They never run under DB_STATEMENT_TIMEOUT_MS, which is meant for requests and tasks.
UNTIMED_COMMANDS = {"migrate", "backup", "restore"}


def _prepare_environment(command: str = "") -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tranche.settings")
    if command in UNTIMED_COMMANDS:
        os.environ["DB_STATEMENT_TIMEOUT_MS"] = "0"
    private_dir(default_var_dir())
    if not os.environ.get("SECRET_KEY") and not os.environ.get("DATABASE_URL"):
        os.environ["SECRET_KEY"] = _local_secret_key(default_var_dir())


def _setup() -> None:
    import django
    from django.apps import apps

    # Once per process: setting up again would also reconfigure logging.
    if not apps.ready:
        django.setup()


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound here rather than by gunicorn: a port that is taken is
    reported at once, and no other process on the port can pass for ours."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(2048)
    listener.set_inheritable(True)
    return listener


def _answers(host: str, port: int) -> bool:
    """True once the web server answers HTTP on our socket (any status will do)."""
    target = "127.0.0.1" if host in ("0.0.0.0", "") else host  # noqa: S104 - a client address
    connection = http.client.HTTPConnection(target, port, timeout=2)
    try:
        connection.request("GET", "/api/health")
        connection.getresponse().read()
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()
    return True


def _signal_group(child: subprocess.Popen[bytes], signum: int) -> None:
    # Each child leads its own process group: the worker's task-queue process goes with
    # it, even when the worker itself died without stopping it.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signum)


def _stop(children: Sequence[subprocess.Popen[bytes]]) -> None:
    for child in children:
        _signal_group(child, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    for child in children:
        try:
            child.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            _signal_group(child, signal.SIGKILL)
            child.wait()


def _not_migrated() -> list[str]:
    """What `tranche migrate` has yet to do here: the migrations the database lacks (as
    app.name) and the cache tables it makes. With several web machines the operator
    migrates once, before starting the new release (docs/deploy.md): machines that each
    migrated on start would race each other through the same migrations."""
    from django.conf import settings
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    missing = [f"{migration.app_label}.{migration.name}" for migration, _ in plan]
    tables = set(connection.introspection.table_names())
    caches = cast(dict[str, dict[str, Any]], settings.CACHES)
    for cache in caches.values():
        if cache["BACKEND"].endswith("DatabaseCache") and cache["LOCATION"] not in tables:
            missing.append(f"the cache table {cache['LOCATION']}")
    return missing


MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def _metrics_dir() -> Path:
    """Where gunicorn's worker processes keep their HTTP metrics, so that a scrape adds
    them up (tranche.core.metrics): PROMETHEUS_MULTIPROC_DIR if set, else a folder of the
    state directory. Emptied at every start: the files of processes that ran before would
    be counted again, and a counter that restarts from zero is what Prometheus expects."""
    configured = os.environ.get(MULTIPROC_ENV)
    folder = Path(configured) if configured else default_var_dir() / "prometheus"
    private_dir(folder)
    for stale in folder.glob("*.db"):
        stale.unlink()
    return folder


def run(argv: Sequence[str]) -> int:
    """Serve until stopped. The web server and the worker live and die together: if either
    exits (the port is taken, a crash), the other is stopped and its exit code returned,
    so a supervisor (systemd, a container runtime) sees the failure and restarts both."""
    parser = argparse.ArgumentParser(
        prog="tranche run", description="Migrate (unless --no-migrate), then serve."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument(
        "--no-worker", action="store_true", help="do not start the background worker"
    )
    parser.add_argument(
        "--no-migrate",
        action="store_true",
        help="do not migrate; refuse to start while a migration is not applied",
    )
    args = parser.parse_args(argv)
    _setup()
    from django.core.management import call_command
    from django.db import connections

    try:
        listener = _bind(args.host, args.port)
    except OSError as exc:
        print(f"tranche run: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    if args.no_migrate:
        pending = _not_migrated()
        if pending:
            shown = ", ".join(pending[:3]) + (", …" if len(pending) > 3 else "")
            print(
                f"tranche run: the database is not migrated ({len(pending)} missing: "
                f"{shown}); run `tranche migrate` first.",
                file=sys.stderr,
            )
            listener.close()
            return 1
    else:
        call_command("migrate", interactive=False, verbosity=1)
    call_command("collectstatic", interactive=False, verbosity=0)
    connections.close_all()

    web = subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
        [
            sys.executable,
            "-m",
            "gunicorn",
            "tranche.wsgi:application",
            f"--bind=fd://{listener.fileno()}",
            f"--workers={args.workers}",
            "--access-logfile=-",
            "--logger-class=tranche.core.logging.GunicornLogger",
            "--graceful-timeout=10",
        ],
        pass_fds=[listener.fileno()],
        start_new_session=True,
        env={**os.environ, MULTIPROC_ENV: str(_metrics_dir())},
    )
    listener.close()
    children = [web]
    if not args.no_worker:
        worker = [sys.executable, "-m", "tranche.cli", "worker"]
        children.append(subprocess.Popen(worker, start_new_session=True))  # noqa: S603

    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    announced = False
    while not stopping:
        exited = [child for child in children if child.poll() is not None]
        if exited:
            code = exited[0].returncode
            name = "web server" if exited[0] is web else "worker"
            print(f"tranche run: the {name} exited with {code}; stopping.", file=sys.stderr)
            _stop(children)
            # A child killed by a signal reports -N; a shell would say 128 + N.
            return code if code > 0 else 128 - code if code < 0 else 1
        if not announced and _answers(args.host, args.port):
            print(f"Tranche is serving on http://{args.host}:{args.port}/ (Ctrl+C stops it)")
            sys.stdout.flush()
            announced = True
        time.sleep(0.2)
    _stop(children)
    return 0


COMMANDS = {"run": run}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    _prepare_environment(args[0] if args else "")
    if args and args[0] in COMMANDS:
        return COMMANDS[args[0]](args[1:])
    _setup()
    from django.core.management import ManagementUtility

    try:
        ManagementUtility(["tranche", *args]).execute()
    except SystemExit as exc:  # a CommandError's exit code, or argparse's
        return exc.code if isinstance(exc.code, int) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
