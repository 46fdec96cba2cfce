"""A request id: one value on every log line of a request, on its response, and on the
lines of the tasks it queued.

It comes from the client or the proxy (`X-Request-ID`) when that is a sane token, so one
id follows a request through the proxy's log and ours; otherwise it is made here. It
lives in a context variable: each request and each task sets it for its own duration,
and the logging filter `RequestIdFilter` copies it onto every record."""

from __future__ import annotations

import contextvars
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.http import HttpRequest, HttpResponse

HEADER = "X-Request-ID"
# Letters, digits and . _ - only, up to 64: anything else could forge a log line (a
# newline, a quote in the JSON) or smuggle a token into every line of the request.
_SANE = re.compile(r"[A-Za-z0-9._-]{1,64}")

_current: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")


def new_request_id() -> str:
    return uuid.uuid4().hex


def sane_request_id(value: str | None) -> str | None:
    return value if value and _SANE.fullmatch(value) else None


def current_request_id() -> str:
    """The id of the request (or task) running now; "" outside of one."""
    return _current.get()


@contextmanager
def request_id_scope(value: str | None) -> Iterator[str]:
    """Run a block (a task, a request) under `value`, or a new id when it is not sane."""
    chosen = sane_request_id(value) or new_request_id()
    token = _current.set(chosen)
    try:
        yield chosen
    finally:
        _current.reset(token)


class RequestIdMiddleware:
    """Outermost: every line logged while the request runs, by any middleware or view,
    carries its id, and so does the response.

    The id stays set until the response is closed, not only until this middleware
    returns: Django logs a 4xx or 5xx answer ("Not Found: …", django.request) after the
    whole middleware chain, and that line belongs to the request too. The server closes
    the response once it is sent (so does the test client)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = sane_request_id(request.headers.get(HEADER)) or new_request_id()
        _current.set(request_id)
        try:
            response = self.get_response(request)
        except BaseException:
            _current.set("")
            raise
        response[HEADER] = request_id
        # A list of callables HttpResponse.close() runs (Django's own hook for this).
        response._resource_closers.append(_forget)  # type: ignore[attr-defined]
        return response


def _forget() -> None:
    _current.set("")
