"""A request id on every log line of a request, on its response, and on the lines of the
tasks the request queued, however much later a worker runs them."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client

from tranche.accounts.models import User
from tranche.core.logging import JsonFormatter, RedactPayTokens, RequestIdFilter
from tranche.notifications.models import OutboxEmail, OutboxStatus


@pytest.fixture
def json_lines() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """What a LOG_FORMAT=json console writes, parsed, from the root logger at INFO."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactPayTokens())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)


@pytest.mark.django_db
def test_a_sane_incoming_id_is_kept_and_answered() -> None:
    response = Client().get("/login/", headers={"X-Request-ID": "lb-7f3a.91_b-2"})
    assert response["X-Request-ID"] == "lb-7f3a.91_b-2"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "incoming",
    [None, "", "a b", 'x"}', "line\nbreak", "é", "x" * 65, "/pay/abc"],
    ids=["none", "empty", "space", "quote", "newline", "non-ascii", "too-long", "slash"],
)
def test_a_missing_or_odd_id_is_replaced_by_a_new_one(incoming: str | None) -> None:
    headers = {} if incoming is None else {"X-Request-ID": incoming}
    first = Client().get("/login/", headers=headers)["X-Request-ID"]
    second = Client().get("/login/", headers=headers)["X-Request-ID"]
    assert len(first) == 32
    assert int(first, 16) >= 0
    assert first != second


@pytest.mark.django_db
def test_every_line_of_a_request_carries_its_id_even_django_s_own_refusal(
    json_lines: Callable[[], list[dict[str, Any]]],
) -> None:
    Client().get("/pay/no-such-link", headers={"X-Request-ID": "req-404"})
    logging.getLogger("tranche.test").info("after the request")

    lines = json_lines()
    [refusal] = [line for line in lines if line["logger"] == "django.request"]
    assert refusal == {
        "time": refusal["time"],
        "level": "WARNING",
        "logger": "django.request",
        "message": "Not Found: /pay/[redacted]",
        "request_id": "req-404",
    }
    assert lines[-1]["request_id"] == "-"  # outside a request, no id


@pytest.mark.django_db(transaction=True)
def test_the_worker_s_delivery_of_an_email_a_request_queued_carries_the_request_s_id(
    settings: Any, admin: User, json_lines: Callable[[], list[dict[str, Any]]]
) -> None:
    """The email is queued by the request (the database queue, as in production) and
    sent later by `db_worker`, in the worker: its line names the request that asked."""
    settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
    asked = Client().post(
        "/account/forgot-password/",
        {"email": admin.email},
        headers={"X-Request-ID": "req-forgot-1"},
    )
    assert asked.status_code == 302
    email = OutboxEmail.objects.get()
    assert email.status == OutboxStatus.PENDING

    call_command("db_worker", "--batch", "--no-startup-delay")

    email.refresh_from_db()
    assert email.status == OutboxStatus.SENT
    [delivered] = [
        line
        for line in json_lines()
        if line["message"] == f"Email {email.pk} (password_reset) sent"
    ]
    assert (delivered["logger"], delivered["request_id"]) == (
        "tranche.notifications.delivery",
        "req-forgot-1",
    )
