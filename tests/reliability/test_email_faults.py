"""Email through faults, with the real worker process (`tranche worker`, with its task
queue process) on PostgreSQL and a real SMTP server (aiosmtpd):

- the SMTP server is down while invoices are sent: the emails wait in the outbox (the
  worker tries, fails and backs off) and go out exactly once when it is back;
- the worker is killed (SIGKILL, its task queue process with it) while the SMTP server
  takes its time answering DATA: after a restart every email is delivered, exactly once
  when the server had not kept the message, and at most once more when it had kept it
  before the kill. The test measures which, kill by kill, and records the figures.

Two waits of the real clock are skipped by moving the rows' times back, as if the time
had passed: the first retry's backoff (a minute) and the claim timeout after which a
dead worker's email is tried again (five minutes)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.smtp_server import SmtpServer
from tests.figures import record
from tests.reliability.processes import (
    Installation,
    ThrowawayPostgres,
    installation,
    shared_cluster,
    start,
    stop,
    tranche,
    wait_until,
)

pytestmark = [pytest.mark.slow, pytest.mark.trust]

KILLS = 4  # alternately: the server had kept the message before the kill, or had not
SLOW_DATA_SECONDS = 2.0
DB = "tranche_email"


@pytest.fixture(scope="module")
def cluster() -> ThrowawayPostgres:
    return shared_cluster()


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def email_installation(tmp_path_factory: pytest.TempPathFactory) -> Installation:
    """One database for the module; each test sends invoices of its own (the first
    milestone of a project each)."""
    return installation(DB, tmp_path_factory.mktemp("var"), EMAIL_USE_TLS="0", EMAIL_TIMEOUT="10")


SEND = """
from tranche.accounts.models import User
from tranche.billing.services.drafts import milestone_complete
from tranche.billing.services.sending import invoice_send
admin = User.objects.get(email="admin@tranche.example")
for project, milestone in %r:
    done = milestone_complete(actor=admin, project_id=project, milestone_id=milestone)
    print("sent", invoice_send(actor=admin, invoice_id=done.invoice.pk).pk)
"""


def send_invoices(env: dict[str, str], milestones: list[list[int]]) -> list[str]:
    """Invoices sent by an admin: each queues its email (an outbox row and a queue task).
    Returns the outbox keys."""
    out = tranche("shell", "-c", SEND % [tuple(m) for m in milestones], env=env)
    sent = [line.split()[1] for line in out.splitlines() if line.startswith("sent ")]
    assert len(sent) == len(milestones), out
    return [f"invoice:{pk}:invoice_sent" for pk in sent]


def outbox(cluster: ThrowawayPostgres, keys: list[str]) -> dict[str, tuple[str, int, str]]:
    rows = cluster.query(
        DB,
        "SELECT key, status, attempts, subject FROM notifications_outboxemail WHERE key = ANY(%s)",
        keys,
    )
    return {key: (status, attempts, subject) for key, status, attempts, subject in rows}


def all_sent(cluster: ThrowawayPostgres, keys: list[str]) -> bool:
    rows = outbox(cluster, keys)
    return len(rows) == len(keys) and all(row[0] == "sent" for row in rows.values())


def received(smtp: SmtpServer) -> Counter[str]:
    return Counter(str(message["Subject"]) for message in smtp.messages)


def worker(env: dict[str, str], smtp: SmtpServer, log: Path) -> subprocess.Popen[bytes]:
    env = {**env, "EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": str(smtp.port)}
    return start(["worker", "--sweep-seconds", "1"], env, log)


def test_emails_queued_while_smtp_is_down_go_out_once_when_it_returns(
    cluster: ThrowawayPostgres, smtp: SmtpServer, email_installation: Installation, tmp_path: Path
) -> None:
    keys = send_invoices(email_installation.env, email_installation.milestones[0:9:3])
    process = worker(email_installation.env, smtp, tmp_path / "worker.log")
    try:
        # SMTP is down: every email is tried, fails, and waits for its retry.
        assert wait_until(
            lambda: all(s == "pending" and a >= 1 for s, a, _ in outbox(cluster, keys).values()),
            60,
        ), outbox(cluster, keys)
        smtp.start()
        # The backoff's minute passes.
        cluster.query(
            DB,
            "UPDATE notifications_outboxemail SET next_attempt_at = now() WHERE key = ANY(%s) "
            "RETURNING id",
            keys,
        )
        assert wait_until(lambda: all_sent(cluster, keys), 60), outbox(cluster, keys)
        time.sleep(2.5)  # more sweeps of the worker: nothing goes out again
        assert process.poll() is None  # the same worker throughout, never restarted
    finally:
        stop(process)
    got = received(smtp)
    assert sorted(got) == sorted(subject for _, _, subject in outbox(cluster, keys).values())
    assert set(got.values()) == {1}
    record("faults", smtp_outage_emails=len(keys), delivered_once=sum(got.values()))


def test_a_worker_killed_mid_delivery_delivers_every_email_once_or_once_more_if_kept(
    cluster: ThrowawayPostgres, smtp: SmtpServer, email_installation: Installation, tmp_path: Path
) -> None:
    smtp.start()
    keys = send_invoices(
        email_installation.env, email_installation.milestones[9 : 9 + 3 * KILLS : 3]
    )
    subjects = {key: subject for key, (_, _, subject) in outbox(cluster, keys).items()}
    kept_at_kill: Counter[str] = Counter()  # copies the server kept from a killed delivery
    kills_kept = kills_not_kept = 0
    for n in range(KILLS):
        keep = n % 2 == 0
        smtp.slow_data(SLOW_DATA_SECONDS, keep_before_answer=keep)
        smtp.data_received.clear()
        before = received(smtp)
        log = tmp_path / f"worker-{n}.log"
        process = worker(email_installation.env, smtp, log)
        try:
            assert smtp.data_received.wait(60), log.read_text()[-3000:]
        finally:
            os.killpg(process.pid, signal.SIGKILL)  # the worker and its task queue process
            process.wait()
        # The email in delivery stays claimed by the dead worker: its claim times out.
        cluster.query(
            DB,
            "UPDATE notifications_outboxemail SET claimed_at = claimed_at - interval '10 minutes'"
            " WHERE status = 'sending' RETURNING id",
        )
        time.sleep(SLOW_DATA_SECONDS + 0.3)  # the server is done with what it was given
        kept = received(smtp) - before
        kept_at_kill.update(kept)
        kills_kept += keep
        kills_not_kept += not keep
        assert not kept if not keep else sum(kept.values()) >= 1

    smtp.slow_data(0, keep_before_answer=True)
    log = tmp_path / "worker-final.log"
    process = worker(email_installation.env, smtp, log)
    try:
        assert wait_until(lambda: all_sent(cluster, keys), 90), outbox(cluster, keys)
    finally:
        stop(process)

    got = received(smtp)
    lost = [key for key, subject in subjects.items() if got[subject] == 0]
    assert lost == []
    # Every copy beyond the first is one the server had kept when its worker was
    # killed, and nothing else: exactly once when the server had not kept it.
    for subject in subjects.values():
        assert got[subject] == 1 + kept_at_kill[subject], (subject, got, kept_at_kill)
    # The copies carry the first one's Message-ID, for the recipient to recognise.
    ids: dict[str, set[str]] = {}
    for message in smtp.messages:
        ids.setdefault(str(message["Subject"]), set()).add(str(message["Message-ID"]))
    assert all(len(found) == 1 for found in ids.values())
    duplicates = sum(count - 1 for count in got.values())
    record(
        "faults",
        worker_kills=KILLS,
        worker_kills_after_server_kept=kills_kept,
        worker_kills_before_server_kept=kills_not_kept,
        worker_kill_emails=len(keys),
        duplicates_after_kill=duplicates,
        duplicates_same_message_id=duplicates,
        lost_after_kill=len(lost),
        delivered_exactly_once_after_kill=sum(1 for s in subjects.values() if got[s] == 1),
    )
