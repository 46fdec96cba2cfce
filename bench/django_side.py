"""The parts of the benchmark that run inside Django, each in its own process started by
bench.run with the benchmark database in DATABASE_URL:

    python -m bench.django_side queue-emails N        queue N reminder emails, as the app does
    python -m bench.django_side capture OUT.sql       queries of one complete and one send
    python -m bench.django_side profile SCENARIO OUT  a scenario in-process under pyinstrument
"""

from __future__ import annotations

import json
import os
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any


def _setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tranche.settings")
    import django

    django.setup()


def queue_emails(count: int, through_service: int = 200) -> dict[str, Any]:
    """Queue `count` reminder emails, as the periodic pass does for a reminder: an outbox
    row and, after commit, its delivery task. The first `through_service` go through the
    billing email service itself (rendering each); the others copy their rendered rows
    under new keys and enqueue the same delivery task after the same commit, so the set-up
    of 10,000 takes seconds, not minutes, and the worker sees the same rows and tasks."""
    from django.db import transaction
    from django.utils import timezone

    from tranche.billing.models import OPEN_STATUSES, Invoice
    from tranche.billing.services.emails import queue_invoice_email
    from tranche.notifications.models import OutboxEmail
    from tranche.notifications.tasks import deliver_email

    started = time.perf_counter()
    now = timezone.now()
    invoices = list(
        Invoice.objects.filter(status__in=OPEN_STATUSES)
        .select_related("project", "customer")
        .order_by("id")[: min(count, through_service)]
    )
    if not invoices:
        raise SystemExit("no open invoice to remind")
    with transaction.atomic():
        for n, invoice in enumerate(invoices):
            queue_invoice_email(
                invoice, "invoice_reminder", now=now, step=f"bench-{n}", when="is 7 days overdue"
            )
    rendered = list(OutboxEmail.objects.filter(key__contains=":invoice_reminder:bench-"))
    queued = len(rendered)
    while queued < count:
        with transaction.atomic():
            copies = []
            for _ in range(min(500, count - queued)):
                model = rendered[queued % len(rendered)]
                copies.append(
                    OutboxEmail(
                        key=f"{model.key}-copy-{queued}",
                        kind=model.kind,
                        to=model.to,
                        subject=model.subject,
                        body_text=model.body_text,
                        body_html=model.body_html,
                        from_email=model.from_email,
                        reply_to=model.reply_to,
                        attachments=model.attachments,
                        next_attempt_at=now,
                        created_at=now,
                    )
                )
                queued += 1
            for email in OutboxEmail.objects.bulk_create(copies):
                transaction.on_commit(partial(deliver_email.enqueue, email.pk))
    return {"queued": queued, "seconds": round(time.perf_counter() - started, 2)}


TRANSACTION = {"BEGIN", "COMMIT"}


def capture(out: Path) -> dict[str, Any]:
    """The queries of one milestone completion and one send (through the services, as the
    API calls them), written to `out`; returns their counts."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tranche.accounts.models import User
    from tranche.billing.models import Invoice
    from tranche.billing.services.drafts import milestone_complete
    from tranche.billing.services.sending import invoice_send
    from tranche.projects.models import Milestone

    admin = User.objects.get(email="admin@bench.example")
    milestone = Milestone.objects.filter(status="pending").order_by("-id").first()
    draft = Invoice.objects.filter(status="draft").order_by("-id").first()
    assert milestone is not None
    assert draft is not None
    lines = []
    counts = {}
    for name, call in (
        (
            "complete",
            lambda: milestone_complete(
                actor=admin, project_id=milestone.project_id, milestone_id=milestone.pk
            ),
        ),
        ("send", lambda: invoice_send(actor=admin, invoice_id=draft.pk)),
    ):
        with CaptureQueriesContext(connection) as captured:
            call()
        # Counted as the query-count tests count them: BEGIN and COMMIT are not queries.
        queries = [q["sql"] for q in captured.captured_queries if q["sql"] not in TRANSACTION]
        counts[name] = len(queries)
        lines.append(f"-- {name}: {len(queries)} queries (BEGIN and COMMIT not counted)")
        lines.extend(sql + ";" for sql in queries)
        lines.append("")
    out.write_text("\n".join(lines))
    return counts


def profile(scenario: str, out: Path, requests: int) -> dict[str, Any]:
    """Run `requests` requests of a read scenario in this process (Django's test client,
    the same settings as the server) under pyinstrument; `tick` profiles the periodic
    pass and `worker` the delivery of queued emails instead."""
    from django.test import Client
    from pyinstrument import Profiler

    from tranche.accounts.models import User
    from tranche.billing.models import Invoice
    from tranche.projects.models import Milestone, Project

    admin = User.objects.get(email="admin@bench.example")
    customer = User.objects.filter(role="customer").order_by("id").first()
    project = Project.objects.order_by("id").first()
    sent = Invoice.objects.exclude(number=None).order_by("-id").first()
    assert customer is not None
    assert project is not None
    assert sent is not None
    client = Client(HTTP_HOST="127.0.0.1")  # an allowed host with DEBUG off
    paths = {
        "floor": f"/api/customers/{customer.customer_id}",
        "financials_first": "/api/invoices?limit=50",
        "financials_deep": "/api/invoices?limit=50",
        "financials_dates": "/financials/?issued_from=2025-01-01&issued_to=2025-01-31",
        "financials_status": "/api/invoices?limit=50&status=overdue",
        "financials_customer": f"/api/invoices?limit=50&customer_id={customer.customer_id}",
        "project_financials": f"/api/projects/{project.pk}/invoices",
        "html_financials": "/financials/",
        "html_project": f"/projects/{project.pk}/",
        "portal_home": "/",
        "pdf": f"/api/projects/{sent.project_id}/invoices/{sent.pk}/pdf",
    }
    profiler = Profiler(interval=0.001)
    client.get("/api/health")  # the first request imports the URLconf: not part of a scenario
    if scenario == "tick":
        from tranche.billing.services.periodic import run_periodic

        with profiler:
            summary = run_periodic()
        result: dict[str, Any] = {"summary": summary}
    elif scenario == "worker":
        from tranche.notifications.delivery import outbox_deliver_due

        with profiler:
            result = {"delivered": outbox_deliver_due(limit=requests)}
    elif scenario in ("complete", "send"):
        from tranche.accounts.services import token_create

        token = token_create(user=admin)
        if scenario == "complete":
            rows = Milestone.objects.filter(status="pending").order_by("?")[:requests]
            calls = [f"/api/projects/{m.project_id}/milestones/{m.pk}/complete" for m in rows]
            method = client.patch
        else:
            drafts = Invoice.objects.filter(status="draft").order_by("?")[:requests]
            calls = [f"/api/projects/{i.project_id}/invoices/{i.pk}/send" for i in drafts]
            method = client.post
        with profiler:
            for path in calls:
                response = method(path, headers={"Authorization": f"Bearer {token}"})
                assert response.status_code == 200, (path, response.status_code)
        result = {"requests": len(calls)}
    else:
        if scenario not in paths:
            raise SystemExit(f"unknown scenario {scenario}; one of {sorted(paths)}, tick, worker")
        client.force_login(customer if scenario == "portal_home" else admin)
        path = paths[scenario]
        if scenario == "financials_deep":  # a cursor some pages in, as a client gets it
            cursor = ""
            for _ in range(5):
                page = client.get(f"/api/invoices?limit=100{cursor}").json()
                cursor = f"&cursor={page['next_cursor']}" if page.get("next_cursor") else cursor
            path = f"{path}{cursor}"
        client.get(path)  # warm: templates, connections
        with profiler:
            for _ in range(requests):
                response = client.get(path)
                assert response.status_code == 200, (path, response.status_code)
        result = {"path": path, "requests": requests}
    out.parent.mkdir(parents=True, exist_ok=True)
    # Not with_suffix: "…-scale0.1" has a dot of its own.
    Path(f"{out}.html").write_text(profiler.output_html())
    from pyinstrument.renderers import ConsoleRenderer

    # The app's own functions by time spent in them and below, then the whole tree.
    flat = profiler.output(ConsoleRenderer(unicode=True, flat=True, flat_time="total"))
    ours = [line for line in flat.splitlines() if "tranche/" in line][:40]
    Path(f"{out}.txt").write_text(
        "Time in the app's functions (and below them):\n"
        + "\n".join(ours)
        + "\n\n"
        + profiler.output_text(unicode=True, show_all=False)
    )
    result["profile"] = f"{out}.html"
    return result


def main(argv: list[str]) -> int:
    _setup()
    command, *rest = argv
    if command == "queue-emails":
        result = queue_emails(int(rest[0]))
    elif command == "capture":
        result = capture(Path(rest[0]))
    elif command == "profile":
        result = profile(rest[0], Path(rest[1]), int(rest[2]) if len(rest) > 2 else 50)
    else:
        raise SystemExit(__doc__)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
