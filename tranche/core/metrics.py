"""Prometheus metrics: the HTTP side, counted per process, and the scrape's answer.

Requests are counted by route (the URL pattern, e.g. `pay/<str:token>`, never the path
itself: a path holds tokens and ids, and each would be a new series) and status, with a
latency histogram by route. gunicorn runs several worker processes; each counts its own
requests, and with PROMETHEUS_MULTIPROC_DIR set (`tranche run` sets it, to a folder under
the state directory emptied at every start) prometheus_client keeps each process's values
in a file there and a scrape, answered by any one process, adds them all up.

The business figures (invoices sent, payments, webhook events, the email outbox, the
task queue) are not counted here: they are read from the database at scrape time
(`billing.metrics`), exact whichever process or machine answers, and surviving restarts."""

from __future__ import annotations

import hmac
import os
import time
from collections.abc import Callable, Iterable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

REQUESTS = Counter(
    "tranche_http_requests",
    "HTTP requests answered, by route (the URL pattern), method and status.",
    ["route", "method", "status"],
)
LATENCY = Histogram(
    "tranche_http_request_duration_seconds",
    "Time to answer an HTTP request, by route and method.",
    ["route", "method"],
)
UNMATCHED = "(unmatched)"  # no URL pattern matched (a 404), or refused before matching
_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


def route_of(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    return f"/{match.route}" if match is not None and match.route else UNMATCHED


class HttpMetricsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        elapsed = time.perf_counter() - started
        route = route_of(request)
        # Any method name a client invents would be a new series.
        method = request.method if request.method in _METHODS else "OTHER"
        REQUESTS.labels(route, method, str(response.status_code)).inc()
        LATENCY.labels(route, method).observe(elapsed)
        return response


def authorized(request: HttpRequest) -> bool | None:
    """None when no METRICS_TOKEN is configured (the endpoint does not exist), else
    whether the request carries it as a bearer token (compared in constant time)."""
    token = settings.METRICS_TOKEN
    if not token:
        return None
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token)


def exposition(collectors: Iterable[Collector]) -> HttpResponse:
    """The text format of the HTTP metrics (every process's, in multiprocess mode) and
    of `collectors`, read now."""
    registry = CollectorRegistry(auto_describe=True)
    path = os.environ.get(MULTIPROC_ENV)
    if path:
        MultiProcessCollector(registry, path=path)  # type: ignore[no-untyped-call]
        body = b""
    else:
        body = generate_latest(REGISTRY)
    for collector in collectors:
        registry.register(collector)
    body += generate_latest(registry)
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
