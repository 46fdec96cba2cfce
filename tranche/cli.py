"""The `tranche` command: Django's management commands plus run, demo, createuser, token.

tranche run [--host H] [--port P]   migrate, then serve with gunicorn
tranche demo [--if-empty]           load demo data (idempotent) and print the logins
tranche createuser --email E --password P --role R [--customer-id N]
tranche token EMAIL                 print a new API token for EMAIL
tranche <django command> …          e.g. tranche migrate, tranche check --deploy
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from tranche.core.env import default_var_dir, private_dir


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


def _prepare_environment() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tranche.settings")
    private_dir(default_var_dir())
    if not os.environ.get("SECRET_KEY") and not os.environ.get("DATABASE_URL"):
        os.environ["SECRET_KEY"] = _local_secret_key(default_var_dir())


def _setup() -> None:
    import django
    from django.apps import apps

    # Once per process: setting up again would also reconfigure logging.
    if not apps.ready:
        django.setup()


def run(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="tranche run", description="Migrate, then serve.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument(
        "--no-worker", action="store_true", help="do not start the background worker"
    )
    args = parser.parse_args(argv)
    _setup()
    from django.core.management import call_command
    from django.db import connections

    call_command("migrate", interactive=False, verbosity=1)
    call_command("collectstatic", interactive=False, verbosity=0)
    connections.close_all()

    children = [
        subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
            [
                sys.executable,
                "-m",
                "gunicorn",
                "tranche.wsgi:application",
                f"--bind={args.host}:{args.port}",
                f"--workers={args.workers}",
                "--access-logfile=-",
                "--logger-class=tranche.core.logging.GunicornLogger",
                "--graceful-timeout=10",
            ]
        )
    ]
    if not args.no_worker:
        children.append(subprocess.Popen([sys.executable, "-m", "tranche.cli", "worker"]))
    print(f"Tranche is serving on http://{args.host}:{args.port}/ (Ctrl+C stops it)", flush=True)

    def stop(signum: int, frame: FrameType | None) -> None:
        for child in children:
            if child.poll() is None:
                child.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    codes = [child.wait() for child in children]
    return max(codes, default=0) if any(codes) else 0


def worker(argv: Sequence[str]) -> int:
    """django-tasks-db's worker for queued tasks, and every SWEEP_SECONDS a sweep that
    delivers emails whose retry is due (or whose task was lost with a crashed process)."""
    parser = argparse.ArgumentParser(prog="tranche worker", description="Run background work.")
    parser.add_argument("--once", action="store_true", help="process what is due, then exit")
    parser.add_argument("--sweep-seconds", type=float, default=30.0)
    args = parser.parse_args(argv)
    _setup()
    import time

    from django.conf import settings
    from django.db import connections

    from tranche.billing.periodic import run_periodic
    from tranche.notifications.services import outbox_deliver_due

    queue: subprocess.Popen[bytes] | None = None
    if not settings.TASKS_IMMEDIATE:
        command = [sys.executable, "-m", "tranche.cli", "db_worker", "--no-startup-delay"]
        if args.once:
            queue = subprocess.Popen([*command, "--batch"])  # noqa: S603
            queue.wait()
        else:
            queue = subprocess.Popen([*command, "--interval", "1"])  # noqa: S603

    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        if queue is not None and queue.poll() is None:
            queue.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    next_tick = 0.0
    while True:
        if time.monotonic() >= next_tick:
            print(run_periodic(), flush=True)
            next_tick = time.monotonic() + settings.TICK_MINUTES * 60
        sent = outbox_deliver_due()
        if sent:
            print(f"Delivered {sent} queued email(s).", flush=True)
        connections.close_all()
        if args.once or stopping:
            break
        deadline = time.monotonic() + args.sweep_seconds
        while not stopping and time.monotonic() < deadline:
            time.sleep(0.5)
    if queue is not None:
        return queue.wait() if not args.once else queue.returncode or 0
    return 0


def tick(argv: Sequence[str]) -> int:
    """Mark overdue invoices, queue reminders, retry waiting webhook events, send emails."""
    argparse.ArgumentParser(prog="tranche tick", description=tick.__doc__).parse_args(argv)
    _setup()
    from tranche.billing.periodic import run_periodic

    print(run_periodic())
    return 0


def reconcile(argv: Sequence[str]) -> int:
    """Settle Stripe payments of unpaid invoices sent over an hour ago that succeeded
    without a webhook; prints what it changed."""
    argparse.ArgumentParser(prog="tranche reconcile", description=reconcile.__doc__).parse_args(
        argv
    )
    _setup()
    from tranche.billing.reconcile import reconcile_payments

    checked, lines = reconcile_payments()
    for line in lines:
        print(line)
    print(f"reconcile: {checked} invoice(s) checked, {len(lines)} change(s) or problem(s).")
    return 0


def demo(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="tranche demo", description="Load demo data.")
    parser.add_argument(
        "--if-empty", action="store_true", help="only when the database has no users yet"
    )
    args = parser.parse_args(argv)
    _setup()
    from tranche.accounts.models import User
    from tranche.demo import LOGINS, load_demo

    if args.if_empty and User.objects.exists():
        if not User.objects.filter(email=LOGINS[0].email).exists():
            print("The database already has users; demo data not loaded.")
            return 0
    else:
        load_demo()
    print("Demo logins:")
    for login in LOGINS:
        print(f"  {login.role:<9} {login.email:<22} password: {login.password}")
    return 0


def createuser(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="tranche createuser", description="Create a user.")
    parser.add_argument("--email", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--role", required=True, choices=["admin", "staff", "customer"])
    parser.add_argument("--customer-id", type=int)
    parser.add_argument("--name", default="")
    args = parser.parse_args(argv)
    _setup()
    from tranche.accounts.services import user_create
    from tranche.core.errors import DomainError

    try:
        user = user_create(
            email=args.email,
            password=args.password,
            role=args.role,
            customer_id=args.customer_id,
            full_name=args.name,
        )
    except DomainError as exc:
        print(f"tranche createuser: {exc.detail}", file=sys.stderr)
        return 2
    print(f"Created {user.role} {user.email} (id {user.pk}).")
    return 0


def token(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="tranche token", description="Print a new API token.")
    parser.add_argument("email")
    args = parser.parse_args(argv)
    _setup()
    from tranche.accounts.models import User
    from tranche.accounts.services import token_create

    user = User.objects.filter(email=args.email.strip().lower(), is_active=True).first()
    if user is None:
        print(f"tranche token: no active user with email {args.email}.", file=sys.stderr)
        return 2
    print(token_create(user=user))
    return 0


COMMANDS = {
    "run": run,
    "worker": worker,
    "tick": tick,
    "reconcile": reconcile,
    "demo": demo,
    "createuser": createuser,
    "token": token,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    _prepare_environment()
    if args and args[0] in COMMANDS:
        return COMMANDS[args[0]](args[1:])
    from django.core.management import execute_from_command_line

    execute_from_command_line(["tranche", *args])
    return 0


if __name__ == "__main__":
    sys.exit(main())
