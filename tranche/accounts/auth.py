"""How API callers prove who they are: a bearer token, or the browser's session."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from ninja.security import APIKeyCookie, HttpBearer
from ninja.utils import check_csrf

from tranche.accounts.models import User
from tranche.accounts.services import token_authenticate
from tranche.core.errors import PermissionDenied

SAFE_METHODS = {"GET", "HEAD", "OPTIONS", "TRACE"}


class BearerTokenAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> User | None:
        user = token_authenticate(token=token)
        if user is not None:
            request.user = user
        return user


class SessionAuth(APIKeyCookie):
    """The logged-in browser session. CSRF is checked only once we know the caller is
    a session user, so an anonymous request is told 401, not a CSRF failure."""

    param_name = settings.SESSION_COOKIE_NAME

    def __init__(self) -> None:
        super().__init__(csrf=False)

    def authenticate(self, request: HttpRequest, key: str | None) -> User | None:
        user = request.user
        if not isinstance(user, User) or not user.is_active:
            return None
        if request.method not in SAFE_METHODS and check_csrf(request) is not None:
            raise PermissionDenied(
                "CSRF check failed: send the csrftoken cookie's value in the X-CSRFToken header.",
                code="csrf_failed",
            )
        return user


bearer_auth = BearerTokenAuth()
session_auth = SessionAuth()
API_AUTH = [bearer_auth, session_auth]


def actor(request: HttpRequest) -> User:
    """The authenticated user of an API request."""
    user = request.auth  # type: ignore[attr-defined]
    assert isinstance(user, User)
    return user


def axes_username(request: HttpRequest, credentials: dict[str, str] | None) -> str | None:
    """The login django-axes counts failures against: the email, however it arrives.
    Django's failure signal names it `username`; axes' own lockout check renames it to
    the user model's USERNAME_FIELD (`email`); the login form posts `username`."""
    given = {str(key): value for key, value in (credentials or {}).items()}
    raw = given.get("username") or given.get("email") or request.POST.get("username")
    return raw.strip().lower() if raw else None
