"""`tranche worker`: everything that happens without a request.

- django-tasks-db's `db_worker` (or, with TASKS_BACKEND=rq, RQ's worker), in a child
  process (--processes of them side by side), runs queued tasks (email delivery,
  PaymentIntent syncs); it records a task that raises as failed and goes on. Their claims
  skip each other's rows, so two never run one task or send one email; a process killed
  mid-send re-sends at most the message it was sending.
- Every TICK_MINUTES, the periodic pass (as `tranche tick`), by one worker of however many
  run (`periodic_pass_claim`); every --sweep-seconds, the email sweep, which delivers
  retries that are due and emails whose task was lost.

Nothing one item or one pass does may stop the worker: a pass that raises is logged and
the next one runs on time, and a queue process that dies is started again."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from argparse import ArgumentParser
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from types import FrameType
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from tranche.billing.services.periodic import periodic_pass_claim, run_periodic
from tranche.core.heartbeat import TICK, WORKER, heartbeat_record
from tranche.notifications.delivery import outbox_deliver_due

logger = logging.getLogger("tranche.worker")

# A queue process that keeps dying is restarted at most this often.
RESTART_DELAY_SECONDS = 5.0


def guarded(name: str, step: Callable[[], object]) -> object | None:
    """Run one step of the loop; a failure is logged and the loop goes on."""
    try:
        return step()
    except Exception:
        logger.exception("The worker's %s failed; it will run again at its next turn.", name)
        return None


def queue_command(*, once: bool) -> list[str]:
    """The task queue's own worker, as a `tranche` command."""
    command = [sys.executable, "-m", "tranche.cli"]
    if settings.TASKS_BACKEND == "rq":
        # RQ runs each task in a forked child; --burst ends once the queue is empty.
        command += ["rqworker", "--job-class", "django_tasks_rq.Job"]
        return command + (["--burst"] if once else []) + ["default"]
    command += ["db_worker", "--no-startup-delay"]
    return command + (["--batch"] if once else ["--interval", "1"])


class QueueProcess:
    """The task queue's worker (db_worker or RQ's) as a child process, restarted if it
    dies."""

    def __init__(self, *, once: bool) -> None:
        self.command = queue_command(once=once)
        self.child: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0

    def start(self) -> None:
        self.child = subprocess.Popen(self.command)  # noqa: S603 - our interpreter, fixed args
        self.started_at = time.monotonic()

    def keep_alive(self) -> None:
        if self.child is None or self.child.poll() is None:
            return
        if time.monotonic() - self.started_at < RESTART_DELAY_SECONDS:
            return
        logger.error(
            "The task queue process exited with %s; starting it again.", self.child.returncode
        )
        self.start()

    def stop(self, *, timeout: float | None = 30) -> int:
        """Wait for the child to end; with a timeout, ask it to stop first."""
        if self.child is None:
            return 0
        if timeout is not None and self.child.poll() is None:
            self.child.terminate()
        try:
            return self.child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.child.kill()
            return self.child.wait()


class Command(BaseCommand):
    help = "Run queued tasks, the email sweep and the periodic pass until stopped."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--once", action="store_true", help="process what is due, then exit")
        parser.add_argument("--sweep-seconds", type=float, default=30.0)
        parser.add_argument(
            "--processes",
            type=int,
            default=settings.WORKER_PROCESSES,
            help="task queue processes to run side by side (PostgreSQL; SQLite has one writer)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        once: bool = options["once"]
        if options["processes"] < 1:
            raise CommandError("--processes must be at least 1.")
        queues = (
            []
            if settings.TASKS_IMMEDIATE
            else [QueueProcess(once=once) for _ in range(options["processes"])]
        )
        stopping = False

        def stop(signum: int, frame: FrameType | None) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        batch_code = 0
        for queue in queues:
            queue.start()
        if once:
            # --batch runs what is queued, then exits by itself.
            batch_code = max([queue.stop(timeout=None) for queue in queues], default=0)
        interval = timedelta(minutes=settings.TICK_MINUTES)

        def periodic_pass() -> str | None:
            # The claim is recorded before the pass runs, so a pass that fails (or takes
            # long) is not run back to back, by this worker or another.
            return run_periodic() if periodic_pass_claim(interval=interval) else None

        while True:
            # Readiness and the Operations page: this worker is alive (see core.heartbeat).
            guarded("heartbeat", partial(heartbeat_record, name=WORKER))
            summary = guarded("periodic pass", periodic_pass)
            if summary is not None:
                self.stdout.write(str(summary))
                guarded("heartbeat", partial(heartbeat_record, name=TICK, summary=str(summary)))
            sent = guarded("email sweep", outbox_deliver_due)
            if sent:
                self.stdout.write(f"Delivered {sent} queued email(s).")
            if once or stopping:
                break
            # A failure may have left a broken connection behind, and a long-lived one
            # would hold server resources while idle: the next turn opens new ones.
            connections.close_all()
            for queue in queues:
                queue.keep_alive()
            deadline = time.monotonic() + options["sweep_seconds"]
            while not stopping and time.monotonic() < deadline:
                time.sleep(0.5)
        if not once:
            for queue in queues:
                queue.stop()
        if batch_code:
            raise CommandError(f"The task queue process exited with {batch_code}.")
