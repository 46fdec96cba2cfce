"""A pay link is a credential: neither gunicorn's access log nor Django's request logs
may show `/pay/<token>`."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
from django.test import Client
from gunicorn.config import Config  # type: ignore[import-untyped]

from tranche.core.logging import GunicornLogger

pytestmark = pytest.mark.django_db

TOKEN = "q8dJ3kP0vXw2LmNa7RtYb5HcZe1GfUsI9oKjE4TpQrS"


@dataclass
class GunicornRequest:
    headers: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class GunicornResponse:
    status: str = "302 Found"
    sent: int = 0
    headers: list[tuple[str, str]] = field(default_factory=list)


def test_gunicorn_access_log_shows_pay_paths_without_their_token(tmp_path: Path) -> None:
    log_file = tmp_path / "access.log"
    config = Config()
    config.set("accesslog", str(log_file))
    # The combined format plus the Location header the sandbox's redirect answers with.
    config.set("access_log_format", '%(h)s "%(r)s" %(s)s "%(f)s" %(U)s %({location}o)s')
    logger = GunicornLogger(config)
    environ = {
        "REMOTE_ADDR": "203.0.113.9",
        "REQUEST_METHOD": "POST",
        "RAW_URI": f"/pay/{TOKEN}?from=email",
        "PATH_INFO": f"/pay/{TOKEN}",
        "QUERY_STRING": "from=email",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_REFERER": f"https://portal.example/pay/{TOKEN}",
    }
    response = GunicornResponse(headers=[("Location", f"/pay/{TOKEN}/done")])

    logger.access(response, GunicornRequest(), environ, timedelta(milliseconds=12))

    line = log_file.read_text()
    assert TOKEN not in line
    assert line.strip() == (
        '203.0.113.9 "POST /pay/[redacted]?from=email HTTP/1.1" 302 '
        '"https://portal.example/pay/[redacted]" /pay/[redacted] /pay/[redacted]/done'
    )


@pytest.fixture
def console() -> Iterator[io.StringIO]:
    """What Django's configured console handler writes during the test."""
    [handler] = [h for h in logging.getLogger().handlers if h.get_name() == "console"]
    assert isinstance(handler, logging.StreamHandler)
    captured = io.StringIO()
    previous = handler.setStream(captured)
    yield captured
    handler.setStream(previous)


def test_django_request_log_of_an_unknown_pay_link_hides_the_token(console: io.StringIO) -> None:
    assert Client().get(f"/pay/{TOKEN}").status_code == 404

    output = console.getvalue()
    assert "Not Found: /pay/[redacted]" in output
    assert TOKEN not in output


def test_django_development_server_log_hides_the_token(console: io.StringIO) -> None:
    # The development server logs each request line this way (WSGIRequestHandler).
    logging.getLogger("django.server").info('"%s" %s %s', f"GET /pay/{TOKEN} HTTP/1.1", 200, 5)

    output = console.getvalue()
    assert '"GET /pay/[redacted] HTTP/1.1" 200 5' in output
    assert TOKEN not in output


@pytest.mark.parametrize(
    ("logged", "shown"),
    [
        (f"GET /%70ay/{TOKEN} HTTP/1.1", "GET /pay/[redacted] HTTP/1.1"),
        (f"GET /pay//{TOKEN} HTTP/1.1", "GET /pay/[redacted] HTTP/1.1"),
        (f"GET /PAY/{TOKEN} HTTP/1.1", "GET /PAY/[redacted] HTTP/1.1"),
        (f"GET /pay/%2e/{TOKEN} HTTP/1.1", "GET /pay/[redacted] HTTP/1.1"),
        (
            f"GET /pay/{TOKEN}/done?payment_intent_client_secret=pi_1_secret_2&x=1 HTTP/1.1",
            "GET /pay/[redacted]/done?payment_intent_client_secret=[redacted]&x=1 HTTP/1.1",
        ),
    ],
)
def test_a_token_written_another_way_is_hidden_too(
    console: io.StringIO, logged: str, shown: str
) -> None:
    """The pay page answers /%70ay/<token> too, and Stripe's return URL carries the
    intent's client secret: the attack run found both in the access log."""
    logging.getLogger("django.server").info('"%s" %s %s', logged, 200, 5)

    output = console.getvalue()
    assert f'"{shown}" 200 5' in output
    assert TOKEN not in output
    assert "pi_1_secret_2" not in output
