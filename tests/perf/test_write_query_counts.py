"""Query budgets of the write paths (issue 11): completing a milestone, sending an invoice,
sending many at once. Each budget holds with 1 and with 50 milestones or invoices, so
it does not grow with the data.

What is counted: every SQL statement of the whole request as the test client makes it,
the token's or the session's authentication included, and the access checks, the
writes, the work run after commit and the answer; plus one for each task enqueued (the
database task backend inserts one row per task; here a backend that only records them
stands in, so the task itself does not run inside the count). Savepoints are counted.
Not counted: the BEGIN and COMMIT that open and close each transaction (psycopg sends
them itself on PostgreSQL; SQLite's are left out so that both databases count alike).
The transactions are real (transactional tests), as in production.

The year's number sequence already has its row (as it does all year but for its first
send, which makes the row: three statements more, once a year)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tasks import task_backends

from tests.factories import PASSWORD, CustomerFactory, make_project
from tests.helpers import Api
from tranche.accounts.models import Customer, User
from tranche.accounts.services import token_create
from tranche.billing.models import Invoice, InvoiceNumberSequence, InvoiceStatus
from tranche.billing.services.drafts import milestone_complete
from tranche.projects.models import Project

pytestmark = pytest.mark.django_db(transaction=True)

COMPLETE_BUDGET = 8
SEND_BUDGET = 12
BULK_PER_INVOICE = 6
# The pages add the session's and its user's reads and the two-factor checks.
PAGE_COMPLETE_BUDGET = 11
PAGE_SEND_BUDGET = 15
# The financials page keeps each draft's outcome in the session for the next view.
PAGE_BULK_SEND_BUDGET = 16

SIZES = [1, 50]
TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK")


@pytest.fixture(autouse=True)
def _tasks_recorded(settings: Any) -> Iterator[None]:
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.dummy.DummyBackend"}}
    yield
    task_backends["default"].clear()  # type: ignore[attr-defined]


def counted(request: Callable[[], Any]) -> tuple[int, list[str], Any]:
    """The statements (and tasks) of one request, as the module docstring says."""
    backend = task_backends["default"]
    backend.clear()  # type: ignore[attr-defined]
    with CaptureQueriesContext(connection) as queries:
        answer = request()
    statements = [
        q["sql"] for q in queries.captured_queries if not q["sql"].startswith(TRANSACTION_CONTROL)
    ]
    tasks = [f"task {r.task.name}" for r in backend.results]  # type: ignore[attr-defined]
    return len(statements) + len(tasks), statements + tasks, answer


def project_of(admin: User, customer: Customer, milestones: int) -> Project:
    share = Decimal(100) / milestones
    return make_project(
        actor=admin,
        customer=customer,
        total="5000.00",
        percentages=tuple(str(share) for _ in range(milestones)),
    )


def this_years_sequence_exists() -> None:
    InvoiceNumberSequence.objects.get_or_create(year=timezone.localdate().year)


def drafts_of(admin: User, customer: Customer, count: int) -> list[Invoice]:
    """`count` drafts, each of its own project and customer (as a bulk send meets them)."""
    drafts = []
    for n in range(count):
        owner = customer if n == 0 else CustomerFactory.create(billing_email=f"ap{n}@x.example")
        project = project_of(admin, owner, 1)
        done = milestone_complete(
            actor=admin, project_id=project.pk, milestone_id=project.milestones.get().pk
        )
        assert done.invoice is not None
        drafts.append(done.invoice)
    return drafts


def signed_in(user: User) -> Client:
    client = Client()
    assert client.post("/login/", {"username": user.email, "password": PASSWORD}).status_code == 302
    client.get("/")  # the session's first stamps are written
    return client


def warm(api: Api) -> Api:
    """The token's last-use stamp is written on its first request (then once an hour)."""
    assert api.get("/api/projects?limit=1").status == 200
    return api


# --- completing a milestone ------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_completing_a_milestone_over_the_api_stays_within_its_budget(
    admin: User, customer_a: Customer, size: int
) -> None:
    """Staff complete the last milestone of a project whose other `size - 1` milestones
    already have drafts (the last one also asks whether retainage is to be released)."""
    project = project_of(admin, customer_a, size)
    milestones = list(project.milestones.order_by("position"))
    for milestone in milestones[:-1]:
        milestone_complete(actor=admin, project_id=project.pk, milestone_id=milestone.pk)
    api = warm(Api(token_create(user=admin)))
    last = milestones[-1]

    count, statements, response = counted(
        lambda: api.patch(f"/api/projects/{project.pk}/milestones/{last.pk}/complete")
    )

    assert response.status == 200
    assert response.body["milestone"]["status"] == "completed"
    assert response.body["draft_invoice"]["status"] == "draft"
    assert count <= COMPLETE_BUDGET, "\n".join(statements)


@pytest.mark.parametrize("size", SIZES)
def test_completing_a_milestone_from_the_project_page_stays_within_its_budget(
    staff: User, admin: User, customer_a: Customer, size: int
) -> None:
    project = project_of(admin, customer_a, size)
    milestones = list(project.milestones.order_by("position"))
    for milestone in milestones[:-1]:
        milestone_complete(actor=admin, project_id=project.pk, milestone_id=milestone.pk)
    client = signed_in(staff)
    last = milestones[-1]

    count, statements, response = counted(
        lambda: client.post(f"/projects/{project.pk}/milestones/{last.pk}/complete")
    )

    assert response.status_code == 302
    last.refresh_from_db()
    assert last.status == "completed"
    assert count <= PAGE_COMPLETE_BUDGET, "\n".join(statements)


# --- sending one invoice ---------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_sending_an_invoice_over_the_api_stays_within_its_budget(
    admin: User, customer_a: Customer, size: int
) -> None:
    """An admin sends one draft of a project that has `size` of them."""
    project = project_of(admin, customer_a, size)
    for milestone in project.milestones.all():
        milestone_complete(actor=admin, project_id=project.pk, milestone_id=milestone.pk)
    draft = project.invoices.order_by("pk").first()
    assert draft is not None
    this_years_sequence_exists()
    api = warm(Api(token_create(user=admin)))

    count, statements, response = counted(
        lambda: api.post(f"/api/projects/{project.pk}/invoices/{draft.pk}/send")
    )

    assert response.status == 200
    assert response.body["invoice"]["status"] == "pending"
    assert count <= SEND_BUDGET, "\n".join(statements)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("page", ["/invoices/{id}/send", "/invoices/{id}/send-now"])
def test_sending_an_invoice_from_its_pages_stays_within_its_budget(
    admin: User, customer_a: Customer, size: int, page: str
) -> None:
    project = project_of(admin, customer_a, size)
    for milestone in project.milestones.all():
        milestone_complete(actor=admin, project_id=project.pk, milestone_id=milestone.pk)
    draft = project.invoices.order_by("pk").first()
    assert draft is not None
    this_years_sequence_exists()
    client = signed_in(admin)

    count, statements, response = counted(lambda: client.post(page.format(id=draft.pk)))

    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.status == InvoiceStatus.PENDING
    assert count <= PAGE_SEND_BUDGET, "\n".join(statements)


# --- sending many ----------------------------------------------------------------------


def bulk_count(admin: User, customer: Customer, size: int) -> tuple[int, list[str]]:
    drafts = drafts_of(admin, customer, size)
    this_years_sequence_exists()
    api = warm(Api(token_create(user=admin)))
    count, statements, response = counted(
        lambda: api.post("/api/invoices/send", {"invoice_ids": [d.pk for d in drafts]})
    )
    assert response.status == 200
    assert [r["ok"] for r in response.body["results"]] == [True] * size
    return count, statements


def test_a_bulk_send_costs_at_most_six_statements_per_invoice_more(
    admin: User, customer_a: Customer
) -> None:
    one, one_statements = bulk_count(admin, customer_a, 1)
    Invoice.objects.filter(status=InvoiceStatus.DRAFT).delete()
    fifty, fifty_statements = bulk_count(admin, customer_a, 50)

    assert one <= SEND_BUDGET, "\n".join(one_statements)
    assert fifty - one <= BULK_PER_INVOICE * 49, "\n".join(fifty_statements)


def test_a_bulk_send_from_the_financials_page_costs_at_most_six_per_invoice_more(
    admin: User, customer_a: Customer
) -> None:
    def page_count(size: int) -> tuple[int, list[str]]:
        drafts = drafts_of(admin, customer_a, size)
        this_years_sequence_exists()
        client = signed_in(admin)
        count, statements, response = counted(
            lambda: client.post("/financials/send", {"invoice": [d.pk for d in drafts]})
        )
        assert response.status_code == 302
        assert not Invoice.objects.filter(pk__in=[d.pk for d in drafts], number=None).exists()
        return count, statements

    one, one_statements = page_count(1)
    fifty, fifty_statements = page_count(50)

    assert one <= PAGE_BULK_SEND_BUDGET, "\n".join(one_statements)
    assert fifty - one <= BULK_PER_INVOICE * 49, "\n".join(fifty_statements)
