"""Scaled out: two web server processes (gunicorn, two workers each) and two `tranche worker`s
on one PostgreSQL database, as two web machines and two worker machines would run, under a
bounded scripted load of mixed actions from several clients at once; one worker is killed
(SIGKILL, as a machine lost) and started again in the middle. Run on the database task
queue, then again on Redis with RQ (TASKS_BACKEND=rq) when redis-server is installed.

Every action that has a twin in real life is made twice at the same moment, through the
two web servers: a milestone completed twice, an invoice sent twice, a webhook delivered
twice (and once more later), a bank transfer recorded twice. Afterwards:

- at most one live invoice per milestone, and at most one PaymentIntent per invoice at the
  payment provider (the fake Stripe, which counts them);
- invoice numbers unique and without gaps;
- one email per (invoice, kind, step): no two outbox rows share a key, every sent invoice
  has its one "invoice sent" email; and the SMTP server received each Message-ID once,
  except at most one message per delivering process killed (the worker's own sweep and its
  task queue process: 2 for the one kill), which a killed process may have handed to the
  server without living to mark it sent. Every email was delivered, except those the killed
  worker had claimed (they wait out the claim timeout, then go);
- every invoice's amount paid is the sum of its payments;
- the periodic pass ran at most once per interval, counted from the workers' logs.

It prints its figures (requests, actions, invoices, emails, passes, duration). `make
test-scale` runs it, on its own: it starts a dozen processes."""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from tests.billing.stripe_events import WEBHOOK_SECRET, intent_succeeded, sign
from tests.fakes.pgbouncer import (
    pgbouncer_binary,
    pgbouncer_transactions,
    throwaway_pgbouncer,
)
from tests.fakes.redis_server import redis_server_binary, throwaway_redis
from tests.fakes.smtp_server import SmtpServer
from tests.fakes.stripe_server import API_KEY, FakeStripe, FakeStripeServer
from tests.reliability.processes import (
    free_port,
    seed,
    start,
    stop,
    tranche,
    tranche_env,
    wait_until,
)

DATABASE_URL = os.environ.get("DATABASE_URL", "")
pytestmark = [
    pytest.mark.scale,
    pytest.mark.slow,
    pytest.mark.skipif(
        not DATABASE_URL.startswith("postgres"),
        reason="scaling out needs PostgreSQL; `make test-scale` runs this",
    ),
]

PROJECTS = 20  # three billable milestones each
CLIENTS = 3
LOAD_SECONDS = 75  # the load stops here whatever is left (it is bounded)
TICK_MINUTES = 1
# The workers run this long at least: into their second interval, by a margin of more
# than one turn of their loop (2 s).
SECOND_INTERVAL_SECONDS = TICK_MINUTES * 60 + 8
# Delivering processes one kill may take down mid-send: the worker (its email sweep) and
# its task queue process.
DUPLICATES_PER_KILL = 2


# --- the database server, a template migrated and seeded once ---------------------------


def server_url(database: str) -> str:
    return urlunsplit(urlsplit(DATABASE_URL)._replace(path=f"/{database}", query=""))


def admin_query(sql: str) -> None:
    with psycopg.connect(server_url("postgres"), autocommit=True) as conn:
        conn.execute(sql)


@dataclass(frozen=True)
class Template:
    name: str
    token: str
    milestones: list[list[int]]  # [project id, milestone id]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Template]:
    name = f"tranche_scale_tpl_{secrets.token_hex(4)}"
    admin_query(f'CREATE DATABASE "{name}"')
    try:
        env = tranche_env(server_url(name), tmp_path_factory.mktemp("template"))
        tranche("migrate", "--verbosity", "0", env=env)
        seeded = seed(env, projects=PROJECTS)
        yield Template(name, seeded["token"], seeded["milestones"])
    finally:
        admin_query(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def database(template: Template) -> Iterator[str]:
    name = f"tranche_scale_{secrets.token_hex(4)}"
    admin_query(f'CREATE DATABASE "{name}" TEMPLATE "{template.name}"')
    try:
        yield name
    finally:
        admin_query(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def connection_url(database: str, pgbouncer_url: str) -> str:
    """Where Tranche's processes connect: the server itself, or PgBouncer in front of it."""
    if not pgbouncer_url:
        return server_url(database)
    return urlunsplit(urlsplit(pgbouncer_url)._replace(path=f"/{database}", query=""))


def query(database: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(server_url(database), autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


# --- the clients -------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    status: int  # 0: no HTTP answer at all
    body: str

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return {}


@dataclass
class Load:
    """The clients' shared account of what they did and what came back."""

    bases: list[str]  # the two web servers
    token: str
    fake: FakeStripe
    deadline: float
    statuses: Counter[int] = field(default_factory=Counter)
    actions: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    server_errors: list[tuple[str, int, str]] = field(default_factory=list)
    finished: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def call(
        self,
        server: int,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        data = raw if raw is not None else json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.bases[server % len(self.bases)] + path, data=data, method=method
        )
        request.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                answer = Answer(response.status, response.read().decode())
        except urllib.error.HTTPError as error:
            answer = Answer(error.code, error.read().decode())
        except OSError:
            answer = Answer(0, "")
        with self.lock:
            self.statuses[answer.status] += 1
            self.latencies.append(time.monotonic() - started)
            if answer.status >= 500 or answer.status == 0:
                self.server_errors.append((f"{method} {path}", answer.status, answer.body[:300]))
        return answer

    def twice(
        self, pool: ThreadPoolExecutor, action: str, make: Callable[[int], Answer]
    ) -> list[Answer]:
        """The same action at the same moment through both web servers."""
        with self.lock:
            self.actions[action] += 2
        return list(pool.map(make, range(2)))

    def webhook(self, server: int, payload: str) -> Answer:
        return self.call(
            server,
            "POST",
            "/api/webhooks/stripe",
            raw=payload.encode(),
            headers={"Stripe-Signature": sign(payload, WEBHOOK_SECRET)},
        )

    def milestone(self, pool: ThreadPoolExecutor, n: int, project: int, milestone: int) -> None:
        """Complete, send, then (by n) pay by card, pay by bank transfer, or leave unpaid."""
        done = self.twice(
            pool,
            "complete",
            lambda s: self.call(
                s, "PATCH", f"/api/projects/{project}/milestones/{milestone}/complete"
            ),
        )
        drafts = {
            a.json()["draft_invoice"]["id"]
            for a in done
            if a.status == 200 and a.json().get("draft_invoice")
        }
        if len(drafts) != 1:
            return  # counted at the end: every completed milestone must have its invoice
        invoice = drafts.pop()
        base = f"/api/projects/{project}/invoices/{invoice}"
        self.twice(pool, "send", lambda s: self.call(s, "POST", f"{base}/send"))
        if n % 4 == 0:
            self.call(n, "GET", "/api/invoices")
            with self.lock:
                self.actions["list"] += 1
        if n % 3 == 0:
            with self.fake.lock:
                live = [dict(i) for i in self.fake.live_intents(invoice)]
            if len(live) != 1:
                return  # counted at the end
            charged = self.fake.pay(live[0]["id"])
            payload = intent_succeeded(
                charged["id"], charged["amount_received"], event_id=f"evt_scale_{invoice}"
            )
            self.twice(pool, "webhook", lambda s: self.webhook(s, payload))
            self.webhook(n + 1, payload)  # Stripe delivers it once more, later
            with self.lock:
                self.actions["webhook"] += 1
        elif n % 3 == 1:
            today = datetime.now(UTC).date().isoformat()
            transfer = {
                "amount": "10.00",
                "method": "bank_transfer",
                "received_on": today,
                "reference": f"T-{invoice}",  # the same transfer entered twice is refused
            }
            self.twice(
                pool, "manual_payment", lambda s: self.call(s, "POST", f"{base}/payments", transfer)
            )

    def client(self, number: int, work: list[tuple[int, int, int]]) -> None:
        with ThreadPoolExecutor(2) as pool:
            for n, project, milestone in work:
                if time.monotonic() > self.deadline:
                    return
                self.milestone(pool, n, project, milestone)
                with self.lock:
                    self.finished += 1


# --- one round ---------------------------------------------------------------------------


@dataclass
class Workers:
    env: dict[str, str]
    logs: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    started: int = 0

    def start(self) -> subprocess.Popen[bytes]:
        log = self.logs / f"worker-{self.started}.log"
        self.started += 1
        process = start(["worker", "--sweep-seconds", "2"], self.env, log)
        self.processes.append(process)
        return process

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        os.killpg(process.pid, signal.SIGKILL)  # the worker and its task queue process
        process.wait()

    def stop_all(self) -> None:
        for process in self.processes:
            stop(process)

    def passes(self) -> int:
        return sum(
            len(re.findall(r"^tick: ", log.read_text(errors="replace"), flags=re.M))
            for log in self.logs.glob("worker-*.log")
        )


def run_round(
    backend: str,
    database: str,
    template: Template,
    tmp_path: Path,
    redis_url: str = "",
    pgbouncer_url: str = "",
) -> dict[str, Any]:
    """One round; with `pgbouncer_url` (a PgBouncer in transaction mode in front of the
    server) every Tranche process connects through it, with DB_PGBOUNCER=1."""
    began = time.monotonic()
    ports = [free_port(), free_port()]
    with ExitStack() as stack:
        smtp = SmtpServer()
        smtp.start()
        stack.callback(smtp.stop)
        fake = stack.enter_context(FakeStripeServer())
        # Each machine its own VAR_DIR; the uploads folder is the one they share.
        media = tmp_path / "media"
        env = tranche_env(
            connection_url(database, pgbouncer_url),
            tmp_path / "worker",
            MEDIA_ROOT=str(media),
            BASE_URL=f"http://127.0.0.1:{ports[0]}",
            ALLOWED_HOSTS="127.0.0.1,localhost",
            PAYMENTS_SANDBOX="0",
            STRIPE_SECRET_KEY=API_KEY,
            STRIPE_API_BASE=fake.url,
            STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
            EMAIL_HOST="127.0.0.1",
            EMAIL_PORT=str(smtp.port),
            EMAIL_USE_TLS="0",
            TICK_MINUTES=str(TICK_MINUTES),
            TASKS_BACKEND=backend,
            # Behind PgBouncer the timeout is the role's (docs/scaling.md), not a start-up
            # option, which PgBouncer refuses.
            **({"DB_PGBOUNCER": "1"} if pgbouncer_url else {"DB_STATEMENT_TIMEOUT_MS": "30000"}),
            **({"REDIS_URL": redis_url} if redis_url else {}),
        )
        webs = [
            start(
                ["run", "--no-worker", "--no-migrate", "--workers", "2", "--port", str(port)],
                {**env, "VAR_DIR": str(tmp_path / f"web-{port}")},
                tmp_path / f"web-{port}.log",
            )
            for port in ports
        ]
        for web in webs:
            stack.callback(stop, web)
        workers = Workers(env, tmp_path)
        workers_began = time.monotonic()
        first = workers.start()
        workers.start()
        stack.callback(workers.stop_all)
        bases = [f"http://127.0.0.1:{port}" for port in ports]
        for base in bases:
            assert wait_until(lambda b=base: _health(b), 120), _tail(tmp_path)

        load = Load(bases, template.token, fake, deadline=time.monotonic() + LOAD_SECONDS)
        work = [(n, p, m) for n, (p, m) in enumerate(template.milestones)]
        clients = [
            threading.Thread(target=load.client, args=(c, work[c::CLIENTS]), daemon=True)
            for c in range(CLIENTS)
        ]
        load_began = time.monotonic()
        for thread in clients:
            thread.start()
        total = len(work)
        ticks = 0

        def reached(share: float) -> bool:
            return wait_until(lambda: load.finished >= total * share, LOAD_SECONDS + 30)

        reached(1 / 3)
        tranche("tick", env=env)  # an operator runs the pass by hand meanwhile
        ticks += 1
        reached(1 / 2)
        workers.kill(first)
        killed_at = datetime.now(UTC)
        time.sleep(1)
        workers.start()
        reached(2 / 3)
        tranche("tick", env=env)
        ticks += 1
        for thread in clients:
            thread.join(timeout=LOAD_SECONDS + 60)
        load_seconds = time.monotonic() - load_began
        # Reads go on until the workers have lived into a second interval, so that the
        # second pass is counted too (two, however many workers ask).
        turn = 0
        while time.monotonic() - workers_began < SECOND_INTERVAL_SECONDS:
            load.call(turn, "GET", "/api/invoices?limit=50")
            load.actions["list"] += 1
            turn += 1
            time.sleep(0.2)

        # The queue drains: every email is delivered but those the killed worker held.
        def drained() -> bool:
            [(waiting,)] = query(
                database,
                "SELECT count(*) FROM notifications_outboxemail WHERE status = 'pending' "
                "OR (status = 'sending' AND claimed_at > %s)",
                killed_at,
            )
            return bool(waiting == 0)

        assert wait_until(drained, 120, step=0.5), _tail(tmp_path)
        time.sleep(2)  # a message in flight reaches the server
        passes = workers.passes()
        worker_seconds = time.monotonic() - workers_began
        for web in webs:
            stop(web)
        for process in workers.processes:
            stop(process)

        figures = check_invariants(database, fake, smtp, load, killed_at)
        message_ids = Counter(str(m["Message-ID"]) for m in smtp.messages)
        through_pgbouncer = pgbouncer_transactions(pgbouncer_url, database) if pgbouncer_url else 0

    assert load.server_errors == [], load.server_errors[:5]
    if pgbouncer_url:  # every request and task went through it: a few transactions each
        assert through_pgbouncer > sum(load.statuses.values()), through_pgbouncer
    # At most one pass per interval (the first as the workers start), however many
    # workers run; and one in each but at most one, which the killed worker may have
    # claimed and died in before it logged it.
    intervals = int(worker_seconds / (TICK_MINUTES * 60)) + 1
    assert intervals - 1 <= passes <= intervals, (passes, worker_seconds)
    latencies = sorted(load.latencies)
    figures.update(
        backend=backend,
        requests=sum(load.statuses.values()),
        statuses=dict(sorted(load.statuses.items())),
        actions=dict(sorted(load.actions.items())) | {"manual_tick": ticks, "worker_kill": 1},
        milestones_done=load.finished,
        latency_p50_ms=round(latencies[len(latencies) // 2] * 1000),
        latency_p95_ms=round(latencies[int(len(latencies) * 0.95)] * 1000),
        passes=passes,
        worker_seconds=round(worker_seconds, 1),
        smtp_messages=len(smtp.messages),
        smtp_duplicate_message_ids=sum(c - 1 for c in message_ids.values()),
        load_seconds=round(load_seconds, 1),
        round_seconds=round(time.monotonic() - began, 1),
        pgbouncer_transactions=through_pgbouncer,
    )
    return figures


def _health(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/api/health", timeout=3) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _tail(folder: Path) -> str:
    return "\n".join(
        f"--- {log.name}\n{log.read_text(errors='replace')[-2000:]}"
        for log in sorted(folder.glob("*.log"))
    )


def check_invariants(
    database: str, fake: FakeStripe, smtp: SmtpServer, load: Load, killed_at: datetime
) -> dict[str, Any]:
    q = lambda sql, *p: query(database, sql, *p)  # noqa: E731
    # At most one live invoice per milestone; every completed milestone has one.
    live = "status <> 'cancelled'"
    doubled = q(
        f"SELECT milestone_id FROM billing_invoice WHERE {live} AND milestone_id IS NOT NULL "
        "GROUP BY milestone_id HAVING count(*) > 1"
    )
    assert doubled == []
    uninvoiced = q(
        "SELECT m.id FROM projects_milestone m WHERE m.status = 'completed' AND NOT EXISTS "
        f"(SELECT 1 FROM billing_invoice i WHERE i.milestone_id = m.id AND i.{live})"
    )
    assert uninvoiced == []
    # At most one PaymentIntent per invoice at the provider; a sent invoice names its own.
    invoices = q("SELECT id, provider_reference FROM billing_invoice WHERE number IS NOT NULL")
    for invoice, reference in invoices:
        intents = fake.live_intents(invoice)
        assert len(intents) <= 1, (invoice, intents)
        assert [i["id"] for i in intents] == [reference], (invoice, reference, intents)
    # Numbers unique, without gaps.
    numbers = [n for (n,) in q("SELECT number FROM billing_invoice WHERE number IS NOT NULL")]
    assert len(set(numbers)) == len(numbers)
    sequence = sorted(int(re.sub(r".*-", "", n)) for n in numbers)
    assert sequence == list(range(1, len(sequence) + 1))
    # One email per (invoice, kind, step): the outbox key, and one invoice_sent each.
    assert q("SELECT key FROM notifications_outboxemail GROUP BY key HAVING count(*) > 1") == []
    unmailed = q(
        "SELECT i.id FROM billing_invoice i WHERE i.number IS NOT NULL AND (SELECT count(*) "
        "FROM notifications_outboxemail o WHERE o.key = 'invoice:' || i.id || ':invoice_sent') "
        "<> 1"
    )
    assert unmailed == []
    # Every email left but those the killed worker had claimed.
    unsent = q(
        "SELECT id, status, claimed_at FROM notifications_outboxemail WHERE status <> 'sent'"
    )
    assert all(s == "sending" and c is not None and c <= killed_at for _, s, c in unsent), unsent
    ids = Counter(str(m["Message-ID"]) for m in smtp.messages)
    duplicates = sum(c - 1 for c in ids.values())
    assert duplicates <= DUPLICATES_PER_KILL, [i for i, c in ids.items() if c > 1]
    [(sent_rows,)] = q("SELECT count(*) FROM notifications_outboxemail WHERE status = 'sent'")
    assert len(ids) >= sent_rows  # every email marked sent reached the server
    # Every invoice's paid amount is the sum of its payments.
    mismatched = q(
        "SELECT i.id FROM billing_invoice i WHERE i.amount_paid <> "
        "(SELECT COALESCE(SUM(p.amount), 0) FROM billing_payment p WHERE p.invoice_id = i.id)"
    )
    assert mismatched == []
    [(payments, paid)] = q("SELECT count(*), COALESCE(SUM(amount), 0) FROM billing_payment")
    kinds = dict(q("SELECT kind, count(*) FROM notifications_outboxemail GROUP BY kind"))
    [(events,)] = q("SELECT count(*) FROM billing_stripeevent")
    return {
        "invoices_sent": len(numbers),
        "payments": payments,
        "paid": str(Decimal(paid)),
        "stripe_events_stored": events,
        "intents_at_provider": fake.created,
        "emails": sum(kinds.values()),
        "emails_by_kind": kinds,
        "emails_left_with_the_killed_worker": len(unsent),
    }


@dataclass(frozen=True)
class Setup:
    """A round's set-up: the task queue, and what Tranche connects to."""

    backend: str
    redis_url: str = ""
    pgbouncer_url: str = ""

    @property
    def name(self) -> str:
        return self.backend + ("+pgbouncer" if self.pgbouncer_url else "")


@pytest.fixture(params=["database", "rq"])
def setup(request: pytest.FixtureRequest) -> Iterator[Setup]:
    """The database queue behind PgBouncer in transaction mode (when pgbouncer is
    installed: `.ci/run` installs it), then RQ on Redis with direct connections."""
    if request.param == "database":
        if pgbouncer_binary() is None:
            yield Setup("database")
            return
        with throwaway_pgbouncer(server_url("postgres")) as url:
            yield Setup("database", pgbouncer_url=url)
        return
    if redis_server_binary() is None:
        pytest.skip("redis-server is not installed (.ci/run installs it)")
    with throwaway_redis() as url:
        yield Setup("rq", redis_url=url)


def test_two_web_servers_and_two_workers_keep_every_promise_under_load(
    setup: Setup, database: str, template: Template, tmp_path: Path
) -> None:
    name = setup.name
    figures = run_round(
        setup.backend, database, template, tmp_path, setup.redis_url, setup.pgbouncer_url
    )
    print(f"\nscale[{name}]: " + json.dumps(figures, default=str))
    assert figures["invoices_sent"] == figures["milestones_done"]
