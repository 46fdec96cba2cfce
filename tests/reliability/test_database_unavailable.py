"""What a request meets when the database cannot be reached: 503, JSON under /api/ and
the friendly page elsewhere, whether a view or a middleware met it. The real outage,
with PostgreSQL stopped under a running server, is test_database_restart.py."""

from __future__ import annotations

import json

import pytest
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse
from django.test import RequestFactory

from tranche.core.http import server_error
from tranche.core.middleware import DatabaseUnavailableMiddleware

pytestmark = pytest.mark.django_db

DOWN = [
    OperationalError("connection to server at 127.0.0.1 failed: Connection refused"),
    InterfaceError("connection already closed"),
]


def middleware() -> DatabaseUnavailableMiddleware:
    return DatabaseUnavailableMiddleware(lambda request: HttpResponse())


@pytest.mark.parametrize("exc", DOWN, ids=["operational", "interface"])
def test_an_api_call_gets_503_json_saying_to_try_again(exc: Exception) -> None:
    response = middleware().process_exception(RequestFactory().get("/api/invoices"), exc)
    assert response is not None
    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    assert response["Retry-After"] == "30"
    body = json.loads(response.content)
    assert body["code"] == "service_unavailable"
    assert "Try again in a moment" in body["detail"]


@pytest.mark.parametrize("exc", DOWN, ids=["operational", "interface"])
def test_a_page_gets_the_friendly_503_page(exc: Exception) -> None:
    response = middleware().process_exception(RequestFactory().get("/projects/"), exc)
    assert response is not None
    page = response.content.decode()
    assert response.status_code == 503
    assert "We&#x27;ll be right back" in page or "We'll be right back" in page
    assert "Traceback" not in page
    assert str(exc) not in page


def test_other_errors_are_left_to_the_server_error_handler() -> None:
    assert middleware().process_exception(RequestFactory().get("/"), ValueError("x")) is None


def test_a_middleware_that_meets_the_outage_also_answers_503() -> None:
    """Django calls handler500 inside its `except` for an exception in a middleware."""
    for path, kind in (("/api/health", "application/json"), ("/", "text/html")):
        try:
            raise OperationalError("server closed the connection unexpectedly")
        except OperationalError:
            response = server_error(RequestFactory().get(path))
        assert response.status_code == 503
        assert response["Content-Type"].startswith(kind)
    try:
        raise ValueError("a bug")
    except ValueError:
        assert server_error(RequestFactory().get("/api/x")).status_code == 500
