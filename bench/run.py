"""`make bench`: measure Tranche at two data sizes and write docs/benchmarks.md.

    python -m bench.run [--scales 0.1,1] [--clients 8] [--duration 6] [--profile SCENARIO]

Needs a PostgreSQL server (DATABASE_URL names it; the benchmark makes and drops its own
databases there). For each scale: create the database, migrate, generate, analyse, run
the periodic pass and the worker, serve the app with gunicorn (2 sync workers, DEBUG
off, the payment sandbox) and drive each scenario from separate client processes. The
method is described in docs/benchmarks.md; the figures section there is rewritten here.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import json
import os
import platform
import random
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

from bench import ceiling
from bench.load import Client, Request, run_callable_load, run_load, sign_in, split

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var" / "bench"
DOC = ROOT / "docs" / "benchmarks.md"
START, END = "<!-- figures:start -->", "<!-- figures:end -->"
HOST = "127.0.0.1"

# The read scenarios, in the order they run: (name, what, auth).
READS = [
    ("floor", "GET /api/customers/{id} (token): a trivial authenticated request", "token"),
    ("financials_first", "GET /api/invoices?limit=50", "token"),
    ("financials_deep", "GET /api/invoices?limit=50&cursor=… (deep page)", "token"),
    ("financials_status", "GET /api/invoices?limit=50&status=overdue", "token"),
    ("financials_customer", "GET /api/invoices?limit=50&customer_id=…", "token"),
    ("financials_dates", "GET /financials/?issued_from=…&issued_to=… (a month)", "admin"),
    ("project_financials", "GET /api/projects/{id}/invoices", "token"),
    ("html_financials", "GET /financials/ (admin session)", "admin"),
    ("html_project", "GET /projects/{id}/ (admin session)", "admin"),
    ("portal_home", "GET / (customer session)", "customer"),
    ("pdf", "GET /api/projects/{id}/invoices/{id}/pdf", "token"),
]


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- the database -----------------------------------------------------------------------


def database_name(scale: float, prefix: str) -> str:
    if scale == 1:
        return prefix
    if scale == 0.1:
        return f"{prefix}_small"
    return f"{prefix}_{str(scale).replace('.', '_')}"


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def recreate_database(server_url: str, name: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


# --- processes --------------------------------------------------------------------------


class Env:
    """The environment of every process of one scale: the production settings the app
    needs (DEBUG off, a secret, the payment sandbox, the database), its own var/ folder."""

    def __init__(self, url: str, db: str, web_port: int, smtp_port: int) -> None:
        self.url = url
        self.var = VAR / db
        self.var.mkdir(parents=True, exist_ok=True)
        self.web_port = web_port
        self.smtp_port = smtp_port
        self.base = {
            **os.environ,
            "DATABASE_URL": url,
            "DEBUG": "0",
            "SECRET_KEY": "bench-only-secret-key-" + "x" * 40,
            "PAYMENTS_SANDBOX": "1",
            "BASE_URL": f"http://{HOST}:{web_port}",
            "VAR_DIR": str(self.var),
            "LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
            "DJANGO_SETTINGS_MODULE": "tranche.settings",
        }
        # Email to the local sink (the tick's and the worker's deliveries).
        self.smtp = {
            **self.base,
            "EMAIL_HOST": HOST,
            "EMAIL_PORT": str(smtp_port),
            "EMAIL_USE_TLS": "0",
        }

    def run(
        self, args: list[str], *, smtp: bool = False, quiet: bool = False
    ) -> tuple[float, float, str]:
        """Run a child to its end: (wall seconds, CPU seconds, stdout)."""
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, *args],
            env=self.smtp if smtp else self.base,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        if done.returncode != 0:
            raise RuntimeError(
                f"{' '.join(args)} exited with {done.returncode}:\n{done.stderr[-3000:]}"
            )
        if not quiet and done.stderr.strip():
            log(done.stderr.strip()[-1500:])
        return wall, cpu, done.stdout

    def tranche(self, *args: str, smtp: bool = False) -> tuple[float, float, str]:
        return self.run(["-m", "tranche.cli", *args], smtp=smtp, quiet=True)


def serve(
    env: Env, app: str, port: int, extra_env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """gunicorn as `tranche run` starts it: 2 sync workers, its access log, our logger."""
    log_file = (env.var / f"gunicorn-{port}.log").open("ab")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            app,
            f"--bind={HOST}:{port}",
            "--workers=2",
            "--worker-class=sync",
            "--access-logfile=-",
            "--logger-class=tranche.core.logging.GunicornLogger",
            "--graceful-timeout=10",
            "--timeout=120",
        ],
        env={**env.base, **(extra_env or {})},
        cwd=ROOT,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn {app} exited with {process.returncode}")
        with contextlib.suppress(OSError, http.client.HTTPException):
            connection = http.client.HTTPConnection(HOST, port, timeout=2)
            connection.request("GET", "/api/health")
            connection.getresponse().read()
            connection.close()
            return process
        time.sleep(0.2)
    stop(process)
    raise RuntimeError(f"gunicorn {app} did not answer on port {port}")


def stop(process: subprocess.Popen[Any]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def tree_rss_kb(pid: int) -> int:
    """Resident memory of `pid` and all its descendants (kB), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{entry}/stat").read_text()
            ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        todo.extend(children.get(current, []))
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


class Sink:
    """A local SMTP server that accepts every message and counts them."""

    def __init__(self, port: int) -> None:
        from aiosmtpd.controller import Controller

        self.count = 0
        self.lock = threading.Lock()
        sink = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                with sink.lock:
                    sink.count += 1
                return "250 OK"

        self.controller = Controller(Handler(), hostname=HOST, port=port)

    def __enter__(self) -> Sink:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()


# --- one scale --------------------------------------------------------------------------


def fetch(url: str, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as connection:
        return connection.execute(sql, params).fetchall()


def get_json(client: Client, path: str) -> Any:
    status, body = client.request("GET", path)
    if status != 200:
        raise RuntimeError(f"GET {path} answered {status}: {body[:300]!r}")
    return json.loads(body)


def run_scale(
    scale: float, args: argparse.Namespace, server_url: str, index: int
) -> dict[str, Any]:
    db = database_name(scale, args.db_prefix)
    url = with_database(server_url, db)
    base_port = args.port + index * 10
    env = Env(url, db, web_port=base_port, smtp_port=base_port + 2)
    out: dict[str, Any] = {"scale": scale, "database": db, "scenarios": {}}
    rng = random.Random(args.seed)
    scale_started = time.perf_counter()

    log(f"scale {scale}: database {db}")
    recreate_database(server_url, db)
    wall, _cpu, _ = env.tranche("migrate", "--verbosity", "0")
    out["migrate_seconds"] = round(wall, 1)
    env.tranche("collectstatic", "--noinput", "--verbosity", "0")
    generated = VAR / f"generated-{db}.json"
    wall, cpu, _ = env.run(
        [
            "-m",
            "bench.generate",
            "--scale",
            str(scale),
            "--seed",
            str(args.seed),
            "--out",
            str(generated),
        ],
        quiet=True,
    )
    data = json.loads(generated.read_text())
    out["generate"] = {
        "seconds": data["seconds"],
        "process_wall": round(wall, 1),
        "process_cpu": round(cpu, 1),
        "counts": data["counts"],
    }
    log(f"generated in {data['seconds']}s (CPU of the generator {cpu:.1f}s): {data['counts']}")
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE")
    out["analyze_seconds"] = round(time.perf_counter() - started, 1)

    with Sink(env.smtp_port) as sink:
        # --- the periodic pass: the first run has the `due` invoices to mark and remind
        # (and the day's first drafts digest); their emails are delivered; the second run
        # has nothing due.
        wall1, cpu1, summary1 = env.tranche("tick", smtp=True)
        env.tranche("db_worker", "--batch", "--no-startup-delay", smtp=True)
        wall2, cpu2, summary2 = env.tranche("tick", smtp=True)
        out["tick"] = {
            "due": data["counts"]["invoices_due"],
            "due_wall": round(wall1, 2),
            "due_cpu": round(cpu1, 2),
            "due_summary": summary1.strip(),
            "idle_wall": round(wall2, 2),
            "idle_cpu": round(cpu2, 2),
            "idle_summary": summary2.strip(),
        }
        log(f"tick: {out['tick']}")

        # --- the worker
        out["worker"] = measure_worker(env, sink, scale, args)
        log(f"worker: {out['worker']}")

    # --- the served app
    web = serve(env, "tranche.wsgi:application", env.web_port)
    try:
        out["scenarios"] = run_http_scenarios(env, data, url, rng, args, out)
    finally:
        stop(web)
    with contextlib.suppress(RuntimeError):
        out["queries"] = json.loads(
            env.run(
                ["-m", "bench.django_side", "capture", str(env.var / "queries.sql")], quiet=True
            )[2]
            .strip()
            .splitlines()[-1]
        )
    out["load_average"] = os.getloadavg()
    out["seconds"] = round(time.perf_counter() - scale_started, 1)
    if not args.keep_db:
        with (
            contextlib.suppress(psycopg.Error),
            psycopg.connect(server_url, autocommit=True) as connection,
        ):
            connection.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    return out


def measure_worker(env: Env, sink: Sink, scale: float, args: argparse.Namespace) -> dict[str, Any]:
    """Queue N reminder emails (as the app does), start `tranche worker`, and time their
    delivery to the sink; the worker's process tree's RSS at the N/10-th and N-th."""
    count = max(1000, round(args.worker_emails * scale))
    checkpoint = count // 10
    _wall, _cpu, stdout = env.run(
        ["-m", "bench.django_side", "queue-emails", str(count)], quiet=True
    )
    queued = json.loads(stdout.strip().splitlines()[-1])
    before = sink.count
    command = [sys.executable, "-m", "tranche.cli", "worker", *args.worker_args.split()]
    started = time.perf_counter()
    worker = subprocess.Popen(
        command,
        env=env.smtp,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=(env.var / "worker.log").open("ab"),
        start_new_session=True,
    )
    marks: dict[str, Any] = {}
    deadline = started + args.worker_timeout
    try:
        rss_start = 0
        while time.perf_counter() < deadline:
            delivered = sink.count - before
            if not rss_start and time.perf_counter() - started > 1:
                rss_start = tree_rss_kb(worker.pid)
            if "first_at" not in marks and delivered >= 1:
                marks["first_at"] = time.perf_counter() - started
            if "checkpoint_at" not in marks and delivered >= checkpoint:
                marks["checkpoint_at"] = time.perf_counter() - started
                marks["rss_checkpoint_kb"] = tree_rss_kb(worker.pid)
            if delivered >= count:
                marks["done_at"] = time.perf_counter() - started
                marks["rss_done_kb"] = tree_rss_kb(worker.pid)
                break
            if worker.poll() is not None:
                break
            time.sleep(0.05)
        delivered = sink.count - before
        elapsed = marks.get("done_at", time.perf_counter() - started)
        marks.setdefault("rss_last_kb", tree_rss_kb(worker.pid))
    finally:
        stop(worker)
    steady = None
    if "checkpoint_at" in marks:
        end_at = marks.get("done_at", elapsed)
        if end_at > marks["checkpoint_at"]:
            steady = (min(delivered, count) - checkpoint) / (end_at - marks["checkpoint_at"])
    rss_growth = None
    if "rss_done_kb" in marks and marks.get("rss_checkpoint_kb"):
        rss_growth = marks["rss_done_kb"] / marks["rss_checkpoint_kb"] - 1
    return {
        "emails": count,
        "queue_seconds": queued["seconds"],
        "delivered": delivered,
        "finished": "done_at" in marks,
        "seconds": round(elapsed, 1),
        # From the N/10-th email on (the start-up and the first periodic pass excluded);
        # overall when the N/10-th was not reached.
        "emails_per_second": round(steady if steady else delivered / elapsed, 1),
        "overall_per_second": round(delivered / elapsed, 1) if elapsed else None,
        "checkpoint": checkpoint,
        "rss_start_kb": rss_start,
        "rss_checkpoint_kb": marks.get("rss_checkpoint_kb"),
        "rss_done_kb": marks.get("rss_done_kb"),
        "rss_last_kb": marks.get("rss_last_kb"),
        "rss_growth": round(rss_growth, 3) if rss_growth is not None else None,
        "command": "tranche worker " + args.worker_args,
    }


def run_http_scenarios(
    env: Env,
    data: dict[str, Any],
    url: str,
    rng: random.Random,
    args: argparse.Namespace,
    out: dict[str, Any],
) -> dict[str, Any]:
    token = {"Authorization": f"Bearer {data['tokens']['admin']}"}
    port = env.web_port
    cookies = {
        "admin": {"Cookie": sign_in(HOST, port, data["users"]["admin"], data["password"])},
        "customer": {"Cookie": sign_in(HOST, port, data["users"]["customer"], data["password"])},
    }
    headers = {"token": token, **cookies}
    results: dict[str, Any] = {}

    customers = [r[0] for r in fetch(url, "SELECT id FROM accounts_customer ORDER BY id")]
    projects = [r[0] for r in fetch(url, "SELECT id FROM projects_project ORDER BY id")]
    sent = fetch(
        url,
        "SELECT project_id, id FROM billing_invoice WHERE number IS NOT NULL "
        "ORDER BY id DESC LIMIT 200",
    )
    some_projects = rng.sample(projects, min(100, len(projects)))
    some_customers = rng.sample(customers, min(50, len(customers)))
    some_sent = rng.sample(sent, min(20, len(sent)))

    # The deep page: follow the cursors from the first page (100 a page), as a client would.
    client = Client(HOST, port, token)
    started = time.perf_counter()
    cursor, depth = None, 0
    while depth < args.deep_pages and time.perf_counter() - started < 30:
        page = get_json(client, "/api/invoices?limit=100" + (f"&cursor={cursor}" if cursor else ""))
        if not page.get("next_cursor"):
            break
        cursor, depth = page["next_cursor"], depth + 1
    client.close()
    followed = time.perf_counter() - started
    deep_note = f"{depth * 100:,} invoices deep ({depth} pages of 100 followed in {followed:.1f}s)"
    today = dt.date.fromisoformat(data["today"])
    month_from, month_to = today - dt.timedelta(days=395), today - dt.timedelta(days=365)

    paths: dict[str, list[Request]] = {
        "floor": [("GET", f"/api/customers/{c}", None) for c in some_customers],
        "financials_first": [("GET", "/api/invoices?limit=50", None)],
        "financials_deep": [("GET", f"/api/invoices?limit=50&cursor={cursor}", None)],
        "financials_status": [("GET", "/api/invoices?limit=50&status=overdue", None)],
        "financials_customer": [
            ("GET", f"/api/invoices?limit=50&customer_id={c}", None) for c in some_customers
        ],
        "financials_dates": [
            ("GET", f"/financials/?issued_from={month_from}&issued_to={month_to}", None)
        ],
        "project_financials": [("GET", f"/api/projects/{p}/invoices", None) for p in some_projects],
        "html_financials": [("GET", "/financials/", None)],
        "html_project": [("GET", f"/projects/{p}/", None) for p in some_projects],
        "portal_home": [("GET", "/", None)],
        "pdf": [("GET", f"/api/projects/{p}/invoices/{i}/pdf", None) for p, i in some_sent],
    }
    for name, _what, auth in READS:
        if args.only and name not in args.only:
            continue
        requests = paths[name]
        per_client = [rng.sample(requests, len(requests)) for _ in range(args.clients)]
        result = run_load(
            name,
            HOST,
            port,
            headers[auth],
            per_client,
            cycle=True,
            duration=args.duration,
            warmup=args.warmup,
            note=deep_note if name == "financials_deep" else "",
        )
        results[name] = result.row()
        log(
            f"{name}: {result.throughput} req/s, p50 {result.p50} ms, p95 {result.p95} ms, "
            f"p99 {result.p99} ms, errors {result.errors}"
        )

    # --- writes: each request on its own milestone or draft, none shared between scenarios.
    pending = fetch(
        url, "SELECT project_id, id FROM projects_milestone WHERE status = 'pending' ORDER BY id"
    )
    drafts = fetch(
        url, "SELECT project_id, id FROM billing_invoice WHERE status = 'draft' ORDER BY id"
    )
    rng.shuffle(pending)
    rng.shuffle(drafts)
    n = args.writes
    # The ceilings are fast: twice as many requests, so they last long enough to measure.
    take = {
        "complete": pending[:n],
        "ceiling_direct": pending[n : 3 * n],
        "ceiling_served": pending[3 * n : 5 * n],
    }
    send_drafts, bulk_drafts = drafts[:n], drafts[n : n + args.bulk]
    write_window = args.write_timeout

    if not args.only or "complete" in args.only:
        requests = [
            ("PATCH", f"/api/projects/{p}/milestones/{m}/complete", None)
            for p, m in take["complete"]
        ]
        result = run_load(
            "complete",
            HOST,
            port,
            token,
            split(requests, args.clients),
            cycle=False,
            duration=write_window,
        )
        results["complete"] = result.row()
        log(f"complete: {result.throughput} req/s, p95 {result.p95} ms, errors {result.errors}")

    if not args.only or "send" in args.only:
        requests = [("POST", f"/api/projects/{p}/invoices/{i}/send", None) for p, i in send_drafts]
        result = run_load(
            "send",
            HOST,
            port,
            token,
            split(requests, args.clients),
            cycle=False,
            duration=write_window,
        )
        results["send"] = result.row()
        log(f"send: {result.throughput} req/s, p95 {result.p95} ms, errors {result.errors}")

    if not args.only or "bulk_send" in args.only:
        results["bulk_send"] = bulk_send(port, token, [i for _p, i in bulk_drafts])
        log(f"bulk send: {results['bulk_send']}")

    actor = fetch(url, "SELECT id FROM accounts_user WHERE email = %s", [data["users"]["admin"]])[
        0
    ][0]
    if not args.only or "ceiling_direct" in args.only:
        setup, work = ceiling.direct(url, actor)
        result = run_callable_load(
            "ceiling_direct",
            split(take["ceiling_direct"], args.clients),
            work,
            setup,
            duration=write_window,
        )
        results["ceiling_direct"] = result.row()
        log(f"ceiling direct: {result.throughput}/s, p95 {result.p95} ms, errors {result.errors}")
    if not args.only or "ceiling_served" in args.only:
        served = serve(
            env,
            "bench.ceiling:app",
            env.web_port + 1,
            {"BENCH_DSN": url, "BENCH_ACTOR_ID": str(actor)},
        )
        try:
            requests = [("PATCH", f"/complete/{p}/{m}", None) for p, m in take["ceiling_served"]]
            result = run_load(
                "ceiling_served",
                HOST,
                env.web_port + 1,
                {},
                split(requests, args.clients),
                cycle=False,
                duration=write_window,
            )
        finally:
            stop(served)
        results["ceiling_served"] = result.row()
        log(
            f"ceiling served: {result.throughput} req/s, p95 {result.p95} ms, "
            f"errors {result.errors}"
        )
    return results


def bulk_send(port: int, token: dict[str, str], ids: list[int]) -> dict[str, Any]:
    """Send the drafts as an admin would: all in one request if the API takes them,
    else in the largest batches it accepts (it answers 422 to a longer list)."""
    client = Client(HOST, port, token)
    started = time.perf_counter()
    requests = sent = failed = 0
    batch = len(ids)
    position = 0
    while position < len(ids):
        chunk = ids[position : position + batch]
        status, body = client.request("POST", "/api/invoices/send", {"invoice_ids": chunk})
        requests += 1
        if status == 422 and batch > 1:
            batch = 100 if batch > 100 else max(1, batch // 2)
            continue
        if status != 200:
            failed += len(chunk)
        else:
            for item in json.loads(body)["results"]:
                if item["ok"]:
                    sent += 1
                else:
                    failed += 1
        position += len(chunk)
    client.close()
    return {
        "drafts": len(ids),
        "sent": sent,
        "failed": failed,
        "requests": requests,
        "batch": batch,
        "seconds": round(time.perf_counter() - started, 2),
    }


# --- budgets, table, document ------------------------------------------------------------


def ratio(a: float | None, b: float | None) -> float | None:
    if not a or not b:
        return None
    return round(a / b, 2)


def budgets(top: dict[str, Any], low: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The issue's budgets, evaluated on the largest scale (`top`); `low` (the smallest
    scale) for "flat growth"."""
    s = top["scenarios"]
    floor = s.get("floor", {}).get("throughput")
    checks: list[dict[str, Any]] = []

    def check(name: str, measured: str, ok: bool | None, scenario: str | None = None) -> None:
        checks.append({"budget": name, "measured": measured, "met": ok, "scenario": scenario})

    for name in ("financials_first", "financials_deep", "html_financials"):
        if name not in s:
            continue
        r = s[name]
        cost = ratio(floor, r["throughput"])
        check(f"{name}: p95 < 60 ms", f"{r['p95']} ms", r["p95"] < 60, name)
        check(f"{name}: cost ≤ 3x the floor", f"{cost}x", cost is not None and cost <= 3, name)
        if low and name in low["scenarios"]:
            growth = ratio(low["scenarios"][name]["throughput"], r["throughput"])
            check(
                f"{name}: flat growth (throughput at scale {low['scale']} ÷ at scale "
                f"{top['scale']} ≤ 1.5)",
                f"{growth}",
                growth is not None and growth <= 1.5,
                name,
            )
    if "complete" in s:
        c = s["complete"]["throughput"]
        check(
            "complete ≥ 0.5x floor throughput",
            f"{ratio(c, floor)}x",
            (ratio(c, floor) or 0) >= 0.5,
            "complete",
        )
        ceiling_served = s.get("ceiling_served", {}).get("throughput")
        check(
            "complete ≥ 0.35x raw-SQL ceiling (served)",
            f"{ratio(c, ceiling_served)}x",
            (ratio(c, ceiling_served) or 0) >= 0.35,
            "complete",
        )
    if "send" in s:
        r = ratio(s["send"]["throughput"], floor)
        check("send ≥ 0.35x floor throughput", f"{r}x", (r or 0) >= 0.35, "send")
    if "bulk_send" in s:
        b = s["bulk_send"]
        check(
            "bulk send of 1,000 drafts < 10 s",
            f"{b['seconds']} s in {b['requests']} request(s), {b['sent']} sent",
            b["seconds"] < 10 and b["sent"] == b["drafts"],
            "bulk_send",
        )
    tick = top.get("tick")
    if tick:
        check(
            "periodic pass, nothing due, < 2 s",
            f"{tick['idle_wall']} s (CPU {tick['idle_cpu']} s)",
            tick["idle_wall"] < 2,
            "tick",
        )
        if low and low.get("tick"):
            growth = ratio(tick["idle_wall"], low["tick"]["idle_wall"])
            check(
                f"periodic pass does not grow with open invoices (scale {top['scale']} ÷ "
                f"{low['scale']}, nothing due, ≤ 1.5)",
                f"{growth}",
                (growth or 99) <= 1.5,
                "tick",
            )
    worker = top.get("worker")
    if worker:
        rate = worker.get("emails_per_second")
        check(
            "worker ≥ 150 emails/s",
            f"{rate} emails/s"
            + (
                ""
                if worker["finished"]
                else f" (only {worker['delivered']:,} of {worker['emails']:,} "
                f"in {worker['seconds']} s)"
            ),
            rate is not None and rate >= 150,
            "worker",
        )
        growth = worker.get("rss_growth")
        check(
            f"worker RSS grows < 20 % from the {worker['checkpoint']:,}th to the "
            f"{worker['emails']:,}th task",
            f"{growth * 100:.1f} %" if growth is not None else "not reached",
            growth is not None and growth < 0.2,
            "worker",
        )
    if "pdf" in s:
        check("invoice PDF p50 < 150 ms", f"{s['pdf']['p50']} ms", s["pdf"]["p50"] < 150, "pdf")
    if "portal_home" in s:
        check(
            "portal page p95 < 100 ms",
            f"{s['portal_home']['p95']} ms",
            s["portal_home"]["p95"] < 100,
            "portal_home",
        )
    queries = top.get("queries")
    if queries:
        check(
            "complete ≤ 8 queries (asserted by make test)",
            f"{queries.get('complete')}",
            queries.get("complete", 99) <= 8,
            None,
        )
        check(
            "send ≤ 12 queries per invoice (asserted by make test)",
            f"{queries.get('send')}",
            queries.get("send", 99) <= 12,
            None,
        )
    return checks


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = int(line.split()[1]) // 1024
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_mb": memory,
        "python": platform.python_version(),
        "commit": commit + (" (with uncommitted changes)" if dirty else ""),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def kb(value: int | None) -> str:
    return f"{value:,} kB" if value else "-"


def render(
    results: list[dict[str, Any]],
    info: dict[str, Any],
    checks: list[dict[str, Any]],
    profiles: dict[str, str],
    total: float,
) -> str:
    lines = [
        f"Measured {info['date']} on commit {info['commit']}: {info['cpu']}, {info['cores']} "
        f"cores, {info['memory_mb']:,} MB RAM, {info['postgres']}, Python {info['python']}. "
        f"Load average before the run {info['load_before']}, after it {info['load_after']} "
        f"(the machine is shared: figures are noisy). The whole run took {total:.0f} s.",
        "",
    ]
    scales = [r["scale"] for r in results]
    head = "| scenario | " + " | ".join(
        f"scale {s}: req/s | p50 | p95 | p99 | xfloor" for s in scales
    )
    if len(scales) > 1:
        head += f" | growth (req/s {scales[-1]} ÷ {scales[0]}) | growth (p95)"
    lines += [
        "### Requests (8 clients; read scenarios for a fixed time, writes once each)",
        "",
        head + " |",
        "|" + "---|" * (head.count("|")),
    ]
    names = [n for n, _w, _a in READS] + ["complete", "send", "ceiling_served", "ceiling_direct"]
    for name in names:
        if not all(name in r["scenarios"] for r in results):
            continue
        cells = []
        for r in results:
            x = r["scenarios"][name]
            floor = r["scenarios"].get("floor", {}).get("throughput")
            errors = f" ({x['errors']} errors)" if x["errors"] else ""
            cells.append(
                f"{x['throughput']}{errors} | {x['p50']} | {x['p95']} | {x['p99']} | "
                f"{ratio(x['throughput'], floor)}"
            )
        row = f"| {name} | " + " | ".join(cells)
        if len(results) > 1:
            a, b = results[0]["scenarios"][name], results[-1]["scenarios"][name]
            row += f" | {ratio(b['throughput'], a['throughput'])} | {ratio(b['p95'], a['p95'])}"
        lines.append(row + " |")
    lines += [
        "",
        "Latencies in milliseconds. xfloor: the scenario's throughput divided by the "
        "floor's at the same scale (1 = as cheap as a trivial authenticated request).",
        "",
    ]
    for r in results:
        s = r["scenarios"]
        lines += [f"### Scale {r['scale']} ({r['database']})", ""]
        g = r["generate"]
        lines.append(
            f"- Generated in {g['seconds']} s (generator process: {g['process_wall']} s "
            f"wall, {g['process_cpu']} s CPU); migrate {r['migrate_seconds']} s, "
            f"VACUUM ANALYZE {r['analyze_seconds']} s. Rows: "
            + ", ".join(f"{k} {v:,}" for k, v in g["counts"].items())
            + "."
        )
        if "financials_deep" in s:
            lines.append(f"- Deep page: {s['financials_deep']['note']}.")
        if "bulk_send" in s:
            b = s["bulk_send"]
            lines.append(
                f"- Bulk send: {b['sent']:,} of {b['drafts']:,} drafts sent in "
                f"{b['seconds']} s, {b['requests']} request(s) of up to {b['batch']} "
                f"(failed {b['failed']})."
            )
        for name in ("complete", "ceiling_served", "ceiling_direct", "send"):
            if name in s:
                x = s[name]
                lines.append(
                    f"- {name}: {x['requests']} requests in {x['seconds']} s, "
                    f"statuses {x['statuses']}."
                )
        if "complete" in s and "ceiling_served" in s:
            done = s["complete"]["throughput"]
            served = ratio(done, s["ceiling_served"]["throughput"])
            direct = ratio(done, s.get("ceiling_direct", {}).get("throughput"))
            lines.append(f"- complete ÷ ceiling: {served} (served), {direct} (direct).")
        t = r.get("tick")
        if t:
            lines.append(
                f"- Periodic pass with {t['due']:,} invoices due: {t['due_wall']} s wall, "
                f"{t['due_cpu']} s CPU ({t['due_summary']}). Nothing due: "
                f"{t['idle_wall']} s wall, {t['idle_cpu']} s CPU ({t['idle_summary']})."
            )
        w = r.get("worker")
        if w:
            lines.append(
                f"- Worker (`{w['command'].strip()}`): {w['delivered']:,} of {w['emails']:,} "
                f"emails delivered in {w['seconds']} s "
                f"({'all' if w['finished'] else 'stopped at the time limit'}); "
                + (
                    f"{w['emails_per_second']} emails/s from the {w['checkpoint']:,}th on, "
                    if w["rss_checkpoint_kb"]
                    else f"the {w['checkpoint']:,}th was not reached; "
                )
                + f"{w['overall_per_second']} emails/s overall; queueing took "
                f"{w['queue_seconds']} s. RSS of the worker's process tree: "
                f"{kb(w['rss_start_kb'])} at start, {kb(w['rss_checkpoint_kb'])} at the "
                f"{w['checkpoint']:,}th email, {kb(w['rss_done_kb'])} at the last, "
                f"{kb(w.get('rss_last_kb'))} when stopped (growth from the "
                f"{w['checkpoint']:,}th to the last: {w['rss_growth']})."
            )
        if r.get("queries"):
            lines.append(
                f"- Queries of one call through the services (captured once, "
                f"`var/bench/{r['database']}/queries.sql`): {r['queries']}."
            )
        lines.append(
            f"- This scale took {r['seconds']} s; load average after it "
            f"{', '.join(f'{x:.2f}' for x in r['load_average'])}."
        )
        lines.append("")
    top = results[-1]
    lines += [
        f"### Budgets at scale {top['scale']}",
        "",
        "| budget | measured | met |",
        "|---|---|---|",
    ]
    for c in checks:
        met = "yes" if c["met"] else "**no**"
        # A bulk send is sends in a loop: the send profile shows where its time goes.
        scenario = "send" if c["scenario"] == "bulk_send" else c["scenario"]
        if not c["met"] and scenario in profiles:
            met += f" (profile: `{profiles[scenario]}`)"
        lines.append(f"| {c['budget']} | {c['measured']} | {met} |")
    lines.append("")
    if profiles:
        lines += [
            "### Where the time goes (from the profiles)",
            "",
            "The app's functions with the most time in and below them (seconds over 20 "
            "requests in one process; the tick: one pass). The whole trees are in the files.",
            "",
        ]
        for name, path in sorted(profiles.items()):
            text = ROOT / path.replace(".html", ".txt")
            if not text.exists():
                continue
            flat = text.read_text().split("\n\n", 1)[0].splitlines()[1:]
            heaviest = [line for line in flat if "iddleware" not in line][:8]
            lines += [f"{name} (`{path}`):", "", "```", *heaviest, "```", ""]
    return "\n".join(lines)


def write_doc(text: str) -> None:
    doc = DOC.read_text() if DOC.exists() else f"# Benchmarks\n\n## Figures\n\n{START}\n{END}\n"
    if START not in doc:
        doc += f"\n## Figures\n\n{START}\n{END}\n"
    head, rest = doc.split(START, 1)
    _old, tail = rest.split(END, 1)
    DOC.write_text(f"{head}{START}\n{text}\n{END}{tail}")


def print_table(results: list[dict[str, Any]], checks: list[dict[str, Any]]) -> None:
    print()
    print(f"{'scenario':<22}" + "".join(f"{'scale ' + str(r['scale']):>34}" for r in results))
    print(f"{'':<22}" + "".join(f"{'req/s   p50   p95   p99 xfloor':>34}" for _ in results))
    for name in [n for n, _w, _a in READS] + [
        "complete",
        "send",
        "ceiling_served",
        "ceiling_direct",
    ]:
        cells = []
        for r in results:
            x = r["scenarios"].get(name)
            floor = r["scenarios"].get("floor", {}).get("throughput")
            cells.append(
                f"{x['throughput']:>8} {x['p50']:>6} {x['p95']:>6} {x['p99']:>6} "
                f"{ratio(x['throughput'], floor) or '-':>5}"
                if x
                else f"{'-':>34}"
            )
        print(f"{name:<22}" + "".join(f"{c:>34}" for c in cells))
    print()
    for c in checks:
        print(f"{'ok  ' if c['met'] else 'MISS'} {c['budget']}: {c['measured']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--scales", default="0.1,1", help="comma-separated, smallest first")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--duration", type=float, default=6.0, help="seconds per read scenario")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument(
        "--writes",
        type=int,
        default=200,
        help="requests of each write scenario (complete, send, ceilings)",
    )
    parser.add_argument("--write-timeout", type=float, default=40.0)
    parser.add_argument("--bulk", type=int, default=1000, help="drafts of the bulk send")
    parser.add_argument("--deep-pages", type=int, default=20, help="pages of 100 to follow")
    parser.add_argument("--worker-emails", type=int, default=10_000, help="at scale 1")
    parser.add_argument("--worker-timeout", type=float, default=60.0)
    parser.add_argument(
        "--worker-args", default="--sweep-seconds 5", help="options of `tranche worker`"
    )
    parser.add_argument("--port", type=int, default=18100, help="first of the ports used")
    parser.add_argument("--db-prefix", default="tranche_bench")
    parser.add_argument("--only", nargs="*", help="run only these HTTP scenarios")
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--no-doc", action="store_true", help="do not rewrite the doc")
    parser.add_argument(
        "--no-profile",
        dest="profile",
        action="store_const",
        const=None,
        default=[],
        help="profile nothing (by default: each scenario whose budget is not met)",
    )
    parser.add_argument(
        "--profile",
        nargs="*",
        default=[],
        help="profile these scenarios (pyinstrument) at the largest scale; "
        "without names: those whose budget is not met",
    )
    parser.add_argument(
        "--render",
        type=Path,
        metavar="RUN_JSON",
        help="only rewrite the doc from a run's var/bench/run.json (no measuring)",
    )
    args = parser.parse_args(argv)
    if args.render:
        run = json.loads(args.render.read_text())
        write_doc(render(run["results"], run["info"], run["checks"], run["profiles"], run["total"]))
        log(f"wrote {DOC.relative_to(ROOT)} from {args.render}")
        return 0
    server_url = os.environ.get("DATABASE_URL", "")
    if not server_url.startswith("postgres"):
        parser.error("DATABASE_URL must name a PostgreSQL server (scripts/with-postgres sets it)")
    scales = [float(s) for s in args.scales.split(",")]
    VAR.mkdir(parents=True, exist_ok=True)
    info = machine()
    info["load_before"] = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    with psycopg.connect(server_url) as connection:
        version = connection.execute("SHOW server_version").fetchone()
        info["postgres"] = f"PostgreSQL {version[0] if version else '?'}"
    started = time.perf_counter()
    results = []
    for index, scale in enumerate(scales):
        keep = args.keep_db or (args.profile is not None and index == len(scales) - 1)
        results.append(
            run_scale(
                scale, argparse.Namespace(**{**vars(args), "keep_db": keep}), server_url, index
            )
        )
        (VAR / "results.json").write_text(json.dumps(results, indent=2))
    info["load_after"] = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    checks = budgets(results[-1], results[0] if len(results) > 1 else None)
    profiles: dict[str, str] = {}
    if args.profile is not None:
        profiles = run_profiles(args, results[-1], server_url, checks)
    total = time.perf_counter() - started
    run = {"info": info, "results": results, "checks": checks, "profiles": profiles}
    (VAR / "run.json").write_text(json.dumps({**run, "total": total}, indent=2))
    print_table(results, checks)
    if not args.no_doc:
        write_doc(render(results, info, checks, profiles, total))
        log(f"wrote {DOC.relative_to(ROOT)}")
    log(f"done in {total:.0f} s")
    return 0


PROFILEABLE = {n for n, _w, _a in READS} | {"tick", "worker", "complete", "send"}


def run_profiles(
    args: argparse.Namespace, top: dict[str, Any], server_url: str, checks: list[dict[str, Any]]
) -> dict[str, str]:
    wanted = args.profile or sorted(
        {c["scenario"] for c in checks if not c["met"] and c["scenario"]}
    )
    env = Env(with_database(server_url, top["database"]), top["database"], args.port, args.port + 2)
    profiles = {}
    for name in wanted:
        if name not in PROFILEABLE:
            log(f"no in-process profile for {name}; see docs/benchmarks.md (py-spy on the server)")
            continue
        out = VAR / f"profile-{name}-scale{top['scale']:g}"
        try:
            env.run(["-m", "bench.django_side", "profile", name, str(out), "20"], quiet=True)
        except RuntimeError as exc:
            log(f"profiling {name} failed: {exc}")
            continue
        profiles[name] = str(out.relative_to(ROOT)) + ".html"
        log(f"profile of {name}: {profiles[name]}")
    if not args.keep_db:
        with psycopg.connect(server_url, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{top["database"]}" WITH (FORCE)')
    return profiles


if __name__ == "__main__":
    sys.exit(main())
