"""Rate limits on the endpoints anyone may call without signing in.

Each rule counts attempts in a fixed window per client address (`client_ip`, which obeys
TRUSTED_PROXY_COUNT like the sign-in lockout) and, where an attacker would aim at one
thing from many addresses, per target too: the account signed in to, the address a reset
is asked for, the person a password link belongs to, the invoice a pay link opens. An
attempt over any of its limits is refused with 429 and Retry-After before the view runs,
so a refused request changes nothing.

The counters live in Django's cache. In production that is the database cache (settings
CACHES), shared by every gunicorn worker; a per-process cache would multiply each limit
by the number of workers. Counting is exact under concurrency even there: an attempt
claims one of the window's numbered slots with `cache.add`, which every backend makes
atomic (the database cache through the table's primary key), so no two requests can take
the same slot and at most `count` attempts pass per window. A plain `incr` would not do:
the database cache's is a read followed by a write.

The rules are listed here by view name, for every method that does work; the endpoints
deliberately left unlimited are listed beside them with the reason, and a test walks the
URL configuration so that a new anonymous endpoint without an entry fails the suite.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.utils.encoding import force_str
from django.utils.http import urlsafe_base64_decode

from tranche.core.http import client_ip, is_api, json_error

# A subject is what one limit counts by: the client's address, an account, a token.
Subject = Callable[[HttpRequest, dict[str, Any]], str | None]


def by_address(request: HttpRequest, kwargs: dict[str, Any]) -> str | None:
    return client_ip(request) or "unknown"


def _submitted(request: HttpRequest, field: str, json_field: str) -> str | None:
    """A field of the posted form, or of the posted JSON object (the API's login)."""
    if request.content_type == "application/json":
        try:
            body = json.loads(request.body)
        except (ValueError, UnicodeDecodeError):
            return None
        value = body.get(json_field) if isinstance(body, dict) else None
    else:
        value = request.POST.get(field)
    if not isinstance(value, str) or not value.strip():
        return None
    # Accounts store emails in lower case and sign-in matches them however cased.
    return value.strip().lower()


def by_account(request: HttpRequest, kwargs: dict[str, Any]) -> str | None:
    return _submitted(request, "username", "email")


def by_email(request: HttpRequest, kwargs: dict[str, Any]) -> str | None:
    return _submitted(request, "email", "email")


def by_link_person(request: HttpRequest, kwargs: dict[str, Any]) -> str | None:
    """The person a set-password link names: its base64 user id decoded, so the same
    id written with or without padding is one count."""
    raw = str(kwargs.get("uidb64") or "")
    try:
        return force_str(urlsafe_base64_decode(raw)) or None
    except (ValueError, TypeError, UnicodeDecodeError):
        return raw or None


def by_argument(name: str) -> Subject:
    def subject(request: HttpRequest, kwargs: dict[str, Any]) -> str | None:
        value = kwargs.get(name)
        return str(value) if value else None

    return subject


@dataclass(frozen=True)
class Limit:
    """`count` attempts per `seconds`, counted by `subject`, named in RATE_LIMITS."""

    name: str
    subject: Subject


# (view name, method) → the limits an attempt must pass, all of them.
RULES: dict[tuple[str, str], tuple[Limit, ...]] = {}


def _rule(view_names: tuple[str, ...], methods: tuple[str, ...], *limits: Limit) -> None:
    for view_name in view_names:
        for method in methods:
            RULES[(view_name, method)] = limits


SIGN_IN = (Limit("sign_in_address", by_address), Limit("sign_in_account", by_account))
# The sign-in page and the API's token login are one door: they share their counters.
_rule(("login", "api:create_token"), ("POST",), *SIGN_IN)
# The second step, a two-factor code after the password: a guess of the code is a
# sign-in attempt from that address (each wrong code also makes the next wait longer).
_rule(("login-code",), ("POST",), Limit("sign_in_address", by_address))
# Each request may email someone: per address, and per recipient against mail bombing.
_rule(
    ("forgot-password",),
    ("POST",),
    Limit("password_reset_address", by_address),
    Limit("password_reset_email", by_email),
)
# An invitation's or a reset's link: choosing the password (Argon2 hashing, sign-in).
_rule(
    ("set-password",),
    ("POST",),
    Limit("password_link_address", by_address),
    Limit("password_link_person", by_link_person),
)
# The pay link's form (the sandbox card payment) and every page and PDF behind the link
# (a Stripe call to bring the intent to the amount due, a PDF made on demand).
_rule(
    ("pay",), ("POST",), Limit("pay_address", by_address), Limit("pay_link", by_argument("token"))
)
_rule(
    ("pay", "pay-done", "pay-document", "pay-receipt"),
    ("GET",),
    Limit("pay_page_address", by_address),
)

# Anonymous endpoints left without a limit, and why. With RULES this covers every
# (view, method) a visitor can reach; tests/core/test_rate_limits.py checks it does.
# "*" stands for every method.
UNLIMITED: dict[tuple[str, str], str] = {
    ("login", "GET"): "shows the form; nothing is checked",
    ("login-code", "GET"): "shows the code form; nothing is checked",
    ("logout", "POST"): "a visitor has no session to end",
    ("forgot-password", "GET"): "shows the form",
    ("set-password", "GET"): "checks the link's signature (an HMAC) and shows the form",
    ("api:health", "GET"): "liveness: answers without reading anything, for the load "
    "balancer's probes",
    ("api:ready", "GET"): "readiness: a few indexed queries (the migration check is kept once "
    "all are applied), for monitoring probes every few seconds; names only its checks",
    ("metrics", "*"): "answers 404 unless METRICS_TOKEN is set, then 401 without it before "
    "any query; the token is compared in constant time and too long to guess, and a "
    "Prometheus scraping every 15 seconds must never be refused",
    ("api:stripe_webhook", "POST"): "the signature (an HMAC) is checked before anything "
    "is read or written; Stripe delivers from its own addresses and a refused event "
    "would delay a payment's settlement",
    ("api:openapi-json", "*"): "the API's description, the same for everyone",
    ("api:openapi-view", "*"): "the API docs page, static",
    ("api:api-root", "*"): "answers 404: no endpoint at /api/ itself",
    ("branding-logo", "GET"): "a file served as is (the business's logo on the sign-in page)",
    ("favicon", "*"): "a redirect to a static file",
}


def _window(seconds: int, now: float) -> tuple[int, float]:
    """This window's number and the seconds left in it."""
    number = int(now // seconds)
    return number, (number + 1) * seconds - now


def _digest(value: str) -> str:
    # Keys hold no email address or token in clear, and stay short and printable.
    return hashlib.sha256(value.encode()).hexdigest()[:32]


def attempt(name: str, value: str, *, now: float | None = None) -> float | None:
    """Count one attempt against limit `name` for `value`: None when it may go on, else
    how many seconds remain until the window ends and attempts are allowed again."""
    configured = settings.RATE_LIMITS.get(name)
    if configured is None:
        return None
    count, seconds = configured
    number, left = _window(seconds, time.time() if now is None else now)
    cache = caches[settings.RATE_LIMIT_CACHE]
    key = f"ratelimit:{name}:{_digest(value)}:{number}"
    timeout = math.ceil(left) + 1
    # The hint says how many slots were taken; starting there keeps a request to one or
    # two writes, and a refusal to one read. A stale hint only costs a few more tries.
    taken = cache.get(key, 0)
    for slot in range(taken + 1, count + 1):
        if cache.add(f"{key}:{slot}", 1, timeout):
            cache.set(key, slot, timeout)
            return None
    if taken < count:
        cache.set(key, count, timeout)
    return left


def check(request: HttpRequest, view_name: str, kwargs: dict[str, Any]) -> float | None:
    """Count the request against every limit of its rule; the longest wait if refused."""
    # HEAD is GET without the body: the same work, the same count.
    method = "GET" if request.method == "HEAD" else request.method or ""
    limits = RULES.get((view_name, method))
    if not limits:
        return None
    waits = []
    for limit in limits:
        value = limit.subject(request, kwargs)
        if value is None:
            continue
        wait = attempt(limit.name, value)
        if wait is not None:
            waits.append(wait)
    return max(waits) if waits else None


def refused(request: HttpRequest, wait: float) -> HttpResponse:
    seconds = max(1, math.ceil(wait))
    minutes = math.ceil(seconds / 60)
    when = f"{seconds} seconds" if seconds < 120 else f"{minutes} minutes"
    detail = f"Too many attempts from your address. Try again in {when}."
    response: HttpResponse
    if is_api(request):
        response = json_error(429, detail, "rate_limited")
    else:
        response = HttpResponse(
            render_to_string("429.html", {"detail": detail, "when": when}, request=request),
            status=429,
        )
    response["Retry-After"] = str(seconds)
    return response


class RateLimitMiddleware:
    """Applies RULES before the view runs (and before the CSRF check, so an attempt
    refused for its token still counts)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable[..., HttpResponse],
        view_args: tuple[Any, ...],
        view_kwargs: dict[str, Any],
    ) -> HttpResponse | None:
        match = request.resolver_match
        if match is None:
            return None
        wait = check(request, match.view_name, view_kwargs)
        return None if wait is None else refused(request, wait)
