"""PostgreSQL restarted under load: `tranche run` (gunicorn and the worker) serves a
steady stream of API calls and pages, writes among them, while its database is stopped
and started twice (once politely, once as after a crash).

During the outage every request fails cleanly: 503 with a JSON `{"detail", "code"}` under
/api/, the friendly page elsewhere; never a 500, a traceback or a dropped connection.
Afterwards nothing is half-written (sent invoices have numbers, links and emails, the
numbers have no gaps, amounts paid are the sums of the payments), and the web server and
the worker carry on without being restarted."""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.figures import record
from tests.reliability.processes import (
    Answer,
    ThrowawayPostgres,
    children,
    free_port,
    http,
    installation,
    shared_cluster,
    start,
    stop,
    wait_until,
)

pytestmark = [pytest.mark.slow, pytest.mark.trust]

DB = "tranche_restart"
RESTARTS = ("fast", "immediate")  # pg_ctl stop modes: a clean shutdown, then a crash
OUTAGE_SECONDS = 4.0


@pytest.fixture(scope="module")
def cluster() -> ThrowawayPostgres:
    return shared_cluster()


@dataclass
class Traffic:
    """Readers and one writer hitting the server; every answer is classified."""

    base: str
    token: str
    milestones: list[list[int]]
    pay_token: str
    outage: bool = False
    stopping: bool = False
    outcomes: Counter[str] = field(default_factory=Counter)
    during_outage: int = 0
    after_recovery: list[tuple[str, int]] = field(default_factory=list)
    recovered_at: float = 0.0
    unclean: list[tuple[str, int, str]] = field(default_factory=list)
    sent: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def classify(self, path: str, answer: Answer, started: float, outage: bool) -> str:
        api = path.startswith("/api/")
        if answer.status == 0:
            kind = "no_answer"
        elif answer.status == 503:
            clean = (
                api
                and answer.content_type.startswith("application/json")
                and (
                    answer.json().get("code") == "service_unavailable"
                    or (
                        path == "/api/health"
                        and answer.json() == {"status": "database_unavailable"}
                    )
                )
            ) or (
                not api
                and answer.content_type.startswith("text/html")
                and "right back" in answer.body
            )
            kind = "clean_failure" if clean else "unclean_failure"
        elif answer.status >= 500:
            kind = "server_error"
        else:
            kind = "answered"
        if "Traceback" in answer.body:
            kind = "traceback"
        with self.lock:
            self.outcomes[kind] += 1
            if outage:
                self.during_outage += 1
            if self.recovered_at and started > self.recovered_at:
                self.after_recovery.append((path, answer.status))
            if kind not in ("answered", "clean_failure"):
                self.unclean.append((path, answer.status, answer.body[:300]))
        return kind

    def call(self, method: str, path: str, body: Any = None, token: bool = True) -> Answer:
        started, outage = time.monotonic(), self.outage
        answer = http(method, self.base + path, token=self.token if token else "", body=body)
        self.classify(path, answer, started, outage or self.outage)
        return answer

    def reader(self, number: int) -> None:
        project = self.milestones[0][0]
        paths = [
            ("/api/health", False),
            ("/api/invoices", True),
            (f"/api/projects/{project}", True),
            (f"/pay/{self.pay_token}", False),
            (f"/api/projects/{project}/invoices", True),
            ("/login/", False),
        ]
        turn = number
        while not self.stopping:
            path, token = paths[turn % len(paths)]
            self.call("GET", path, token=token)
            turn += 1
            time.sleep(0.05)

    def step(self, method: str, path: str, body: Any = None) -> Answer:
        """A client that retries while the service says it is briefly unavailable."""
        for _ in range(80):
            answer = self.call(method, path, body)
            if answer.status != 503 and not (answer.status == 409 and "in_progress" in answer.body):
                return answer
            time.sleep(0.25)
        return answer

    def writer(self) -> None:
        today = datetime.now(UTC).date().isoformat()
        for project, milestone in self.milestones[3:]:
            if self.stopping:
                return
            done = self.step("PATCH", f"/api/projects/{project}/milestones/{milestone}/complete")
            if done.status != 200:
                continue
            invoice = done.json()["draft_invoice"]["id"]
            base = f"/api/projects/{project}/invoices/{invoice}"
            sent = self.step("POST", f"{base}/send")
            if sent.status == 200 or (sent.status == 409 and "not_draft" in sent.body):
                self.sent.append(invoice)
                self.step(
                    "POST",
                    f"{base}/payments",
                    {
                        "amount": "10.00",
                        "method": "bank_transfer",
                        "received_on": today,
                        "reference": f"T-{invoice}",  # a retried transfer is refused, not doubled
                    },
                )
            time.sleep(0.1)


def check_nothing_half_written(cluster: ThrowawayPostgres) -> dict[str, int]:
    q = lambda sql: cluster.query(DB, sql)  # noqa: E731
    half_sent = q(
        "SELECT id FROM billing_invoice WHERE status <> 'draft' AND status <> 'cancelled' AND ("
        "number IS NULL OR pay_token IS NULL OR provider_reference IS NULL OR sent_at IS NULL)"
    )
    assert half_sent == []
    assert q("SELECT id FROM billing_invoice WHERE status = 'draft' AND number IS NOT NULL") == []
    numbers = [row[0] for row in q("SELECT number FROM billing_invoice WHERE number IS NOT NULL")]
    sequence = sorted(int(re.sub(r".*-", "", n)) for n in numbers)
    assert sequence == list(range(1, len(sequence) + 1))
    [(last,)] = q("SELECT COALESCE(MAX(last_number), 0) FROM billing_invoicenumbersequence")
    assert last == len(sequence)
    unmailed = q(
        "SELECT i.id FROM billing_invoice i WHERE i.number IS NOT NULL AND (SELECT count(*) "
        "FROM notifications_outboxemail o WHERE o.key = 'invoice:' || i.id || ':invoice_sent') <> 1"
    )
    assert unmailed == []
    mismatched = q(
        "SELECT i.id FROM billing_invoice i WHERE i.amount_paid <> "
        "(SELECT COALESCE(SUM(p.amount), 0) FROM billing_payment p WHERE p.invoice_id = i.id)"
    )
    assert mismatched == []
    drafts_of_completed = q(
        "SELECT m.id FROM projects_milestone m WHERE m.status = 'completed' AND NOT EXISTS "
        "(SELECT 1 FROM billing_invoice i WHERE i.milestone_id = m.id AND i.status <> 'cancelled')"
    )
    assert drafts_of_completed == []
    return {"sent_invoices": len(sequence)}


def test_postgres_restarts_fail_requests_cleanly_and_everything_recovers_without_a_restart(
    cluster: ThrowawayPostgres, tmp_path: Path
) -> None:
    port = free_port(8131)
    base = f"http://127.0.0.1:{port}"
    installed = installation(DB, tmp_path, BASE_URL=base)
    env = installed.env
    token = installed.token
    milestones = installed.milestones[:36]  # twelve projects
    run = start(["run", "--port", str(port), "--workers", "2"], env, tmp_path / "run.log")
    try:
        assert wait_until(lambda: http("GET", f"{base}/api/health").status == 200, 90)
        assert wait_until(lambda: len(children(run.pid)) == 2, 30)
        processes_before = sorted(children(run.pid))
        gunicorn_workers_before = sorted(children(processes_before[0]))
        # One invoice sent before the storm, for the pay page the readers ask for.
        project, milestone = milestones[0]
        done = http("PATCH", f"{base}/api/projects/{project}/milestones/{milestone}/complete",
                    token=token)  # fmt: skip
        invoice = done.json()["draft_invoice"]["id"]
        assert http("POST", f"{base}/api/projects/{project}/invoices/{invoice}/send",
                    token=token).status == 200  # fmt: skip
        [(pay_token,)] = cluster.query(DB, "SELECT pay_token FROM billing_invoice WHERE id = %s",
                                       invoice)  # fmt: skip
        traffic = Traffic(base, token, milestones, pay_token)
        threads = [threading.Thread(target=traffic.reader, args=(n,)) for n in range(2)]
        threads.append(threading.Thread(target=traffic.writer))
        for thread in threads:
            thread.start()
        try:
            time.sleep(2)
            for mode in RESTARTS:
                traffic.outage = True
                cluster.stop(mode)
                time.sleep(OUTAGE_SECONDS)
                cluster.start()
                assert wait_until(lambda: http("GET", f"{base}/api/health").status == 200, 30)
                traffic.outage = False
                time.sleep(3)
            traffic.recovered_at = time.monotonic()
            time.sleep(3)
        finally:
            traffic.stopping = True
            for thread in threads:
                thread.join(timeout=60)

        outcomes = traffic.outcomes
        assert traffic.unclean == []
        assert outcomes["clean_failure"] > 0, outcomes  # the outage was seen, and clean
        assert traffic.after_recovery  # and after it every request is answered normally
        assert [a for a in traffic.after_recovery if a[1] >= 500] == []

        # The same processes serve: nothing was restarted, by us or by `tranche run`.
        assert run.poll() is None
        assert sorted(children(run.pid)) == processes_before
        assert sorted(children(processes_before[0])) == gunicorn_workers_before
        # The worker works: an invoice sent now has its email delivered by it.
        project, milestone = milestones[1]
        done = http("PATCH", f"{base}/api/projects/{project}/milestones/{milestone}/complete",
                    token=token)  # fmt: skip
        invoice = done.json()["draft_invoice"]["id"]
        assert http("POST", f"{base}/api/projects/{project}/invoices/{invoice}/send",
                    token=token).status == 200  # fmt: skip

        def mailed() -> bool:
            rows = cluster.query(
                DB, "SELECT status FROM notifications_outboxemail WHERE key = %s",
                f"invoice:{invoice}:invoice_sent",
            )  # fmt: skip
            return rows == [("sent",)]

        assert wait_until(mailed, 60), (tmp_path / "run.log").read_text()[-3000:]
        figures = check_nothing_half_written(cluster)
        paid = cluster.query(DB, "SELECT COALESCE(SUM(amount), 0) FROM billing_payment")
        assert paid[0][0] == Decimal("10.00") * len(
            {row[0] for row in cluster.query(DB, "SELECT invoice_id FROM billing_payment")}
        )
    finally:
        stop(run)

    record(
        "faults",
        pg_restarts=len(RESTARTS),
        pg_restart_modes=list(RESTARTS),
        requests_total=sum(outcomes.values()),
        requests_during_outage=traffic.during_outage,
        clean_failures=outcomes["clean_failure"],
        server_errors=outcomes["server_error"]
        + outcomes["unclean_failure"]
        + outcomes["traceback"],
        dropped_connections=outcomes["no_answer"],
        requests_after_recovery=len(traffic.after_recovery),
        writes_sent_invoices=figures["sent_invoices"],
        recovered_without_restart=True,
    )
