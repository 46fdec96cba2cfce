"""How long a signed-in session lasts, and ending all of a person's sessions.

A session ends after SESSION_IDLE_MINUTES without a request (a computer left signed in)
and SESSION_ABSOLUTE_HOURS after signing in whatever happens (a stolen cookie stops
working). Both are kept in the session itself: when it was signed in, and when it was
last seen (written at most once a minute, so a page full of requests is not a write
each).

A changed password already ends every other session through Django's session auth hash
(the session remembers a hash of the password; `get_user` compares it on each request),
and a deactivated user's sessions through ModelBackend (which refuses inactive users).
`sessions_end_for` also deletes those sessions' rows, so nothing of them is left.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Literal

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import REDIRECT_FIELD_NAME, SESSION_KEY, logout
from django.contrib.auth.views import redirect_to_login
from django.contrib.sessions.models import Session
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone

from tranche.accounts.models import User
from tranche.core.http import is_api

SIGNED_IN_AT = "tranche_signed_in_at"
SEEN_AT = "tranche_seen_at"
SEEN_RESOLUTION = timedelta(minutes=1)

Expiry = Literal["idle", "absolute"]


def idle_limit() -> timedelta:
    return timedelta(minutes=settings.SESSION_IDLE_MINUTES)


def absolute_limit() -> timedelta:
    return timedelta(hours=settings.SESSION_ABSOLUTE_HOURS)


def session_expiry(*, signed_in_at: datetime, seen_at: datetime, now: datetime) -> Expiry | None:
    """Why a session signed in at `signed_in_at` and last seen at `seen_at` has ended by
    `now`, or None while it lasts. Both limits are inclusive of their last moment."""
    if now - signed_in_at > absolute_limit():
        return "absolute"
    if now - seen_at > idle_limit():
        return "idle"
    return None


def mark_signed_in(request: HttpRequest, *, now: datetime) -> None:
    request.session[SIGNED_IN_AT] = now.timestamp()
    request.session[SEEN_AT] = now.timestamp()


def _stamp(request: HttpRequest, key: str) -> datetime | None:
    value = request.session.get(key)
    if not isinstance(value, int | float):
        return None
    return datetime.fromtimestamp(value, tz=UTC)


EXPIRED_SENTENCE = {
    "idle": "You were signed out after {minutes} minutes without activity. Sign in again.",
    "absolute": "You were signed out: a session lasts at most {hours} hours. Sign in again.",
}


class SessionLimitsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            now = timezone.now()
            signed_in_at = _stamp(request, SIGNED_IN_AT)
            seen_at = _stamp(request, SEEN_AT)
            if signed_in_at is None or seen_at is None:
                # A session from before these limits: they start counting now.
                mark_signed_in(request, now=now)
            else:
                why = session_expiry(signed_in_at=signed_in_at, seen_at=seen_at, now=now)
                if why is not None:
                    return self._expired(request, why)
                if now - seen_at >= SEEN_RESOLUTION:
                    request.session[SEEN_AT] = now.timestamp()
        response = self.get_response(request)
        # Signed in by this very request (the login view put the user in the session).
        # A bearer-token request has a user but no session user: it must not be given a
        # session, or every call of a client without cookies writes a new session row.
        if SESSION_KEY in request.session and SIGNED_IN_AT not in request.session:
            mark_signed_in(request, now=timezone.now())
        return response

    def _expired(self, request: HttpRequest, why: Expiry) -> HttpResponse:
        logout(request)
        detail = EXPIRED_SENTENCE[why].format(
            minutes=settings.SESSION_IDLE_MINUTES, hours=settings.SESSION_ABSOLUTE_HOURS
        )
        if is_api(request):
            return JsonResponse({"detail": detail, "code": "session_expired"}, status=401)
        messages.info(request, detail)
        return redirect_to_login(request.get_full_path(), settings.LOGIN_URL, REDIRECT_FIELD_NAME)


def sessions_end_for(user: User, *, keep: str | None = None, now: datetime | None = None) -> int:
    """Delete every live session of `user` but `keep` (the session key of the request
    doing this, when it should stay signed in); returns how many ended.

    Sessions are found by reading them: the session table has no user column. This runs
    when a password changes or an account is deactivated, rarely, and reads only
    sessions that have not expired."""
    now = now or timezone.now()
    ended = []
    for session in Session.objects.filter(expire_date__gt=now).iterator():
        if session.session_key == keep:
            continue
        if session.get_decoded().get(SESSION_KEY) == str(user.pk):
            ended.append(session.session_key)
    Session.objects.filter(session_key__in=ended).delete()
    return len(ended)
