"""The security log: who signed in, failed, was locked out, changed their two-factor
set-up, their role or their tokens, and who exported the books.

`security_event(...)` writes one line. The request's address and browser are taken from
the request being served (set by `SecurityContextMiddleware`), so a service deep below a
view need not be handed the request; outside a request (a command, a task) they are
blank. A line never holds a secret: no password, code, token or recovery code, and a
failed sign-in names the account only when the email typed is one (people type their
password into the email field)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from ipaddress import ip_address

from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from tranche.accounts.access import require_admin
from tranche.accounts.models import SecurityEvent, SecurityEventKind, User
from tranche.core.http import client_ip

USER_AGENT_LENGTH = 200


@dataclass(frozen=True)
class RequestContext:
    ip_address: str | None
    user_agent: str


_context: ContextVar[RequestContext | None] = ContextVar("security_request", default=None)


def _valid_ip(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return str(ip_address(value))
    except ValueError:
        return None


def context_of(request: HttpRequest) -> RequestContext:
    agent = request.META.get("HTTP_USER_AGENT", "")
    return RequestContext(
        ip_address=_valid_ip(client_ip(request)),
        user_agent=" ".join(str(agent).split())[:USER_AGENT_LENGTH],
    )


@contextmanager
def request_context(request: HttpRequest) -> Iterator[None]:
    token = _context.set(context_of(request))
    try:
        yield
    finally:
        _context.reset(token)


class SecurityContextMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with request_context(request):
            return self.get_response(request)


def _user(user: object) -> User | None:
    return user if isinstance(user, User) and user.pk is not None else None


def security_event(
    *,
    kind: SecurityEventKind,
    actor: User | None = None,
    target: User | None = None,
    detail: str = "",
    now: datetime | None = None,
) -> SecurityEvent:
    """Write one line of the security log. `actor` is who did it (None: nobody signed in,
    e.g. a failed sign-in), `target` whose account it concerns (default: the actor)."""
    actor = _user(actor)
    target = _user(target) or actor
    context = _context.get() or RequestContext(ip_address=None, user_agent="")
    return SecurityEvent.objects.create(
        at=now or timezone.now(),
        kind=kind,
        actor=actor,
        actor_email=actor.email if actor else "",
        target=target,
        target_email=target.email if target else "",
        ip_address=context.ip_address,
        user_agent=context.user_agent,
        detail=" ".join(detail.split())[:500],
    )


def security_log(
    *, user: User, kind: str = "", target_id: int | None = None
) -> QuerySet[SecurityEvent]:
    """The log, newest first (admins only), optionally of one kind or about one person."""
    require_admin(user)
    events = SecurityEvent.objects.all()
    if kind:
        events = events.filter(kind=kind)
    if target_id is not None:
        events = events.filter(target_id=target_id)
    return events.order_by("-at", "-id")
