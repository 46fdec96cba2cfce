"""HTTP concerns shared by every app: JSON errors for the API, Django's error handlers,
and the client's address for django-axes.

Django answers some errors before ninja ever runs (a bad Host header, a body over
DATA_UPLOAD_MAX_MEMORY_SIZE, a CSRF failure, an unhandled exception): these handlers make
those answers JSON `{"detail", "code"}` under /api/ and Django's own pages elsewhere, which
render the site's 403.html, 404.html and 500.html (tranche/web/templates/) by name. Django
renders 500.html without a request or context processors, so it must not need them."""

from __future__ import annotations

import logging
import sys

from django.conf import settings
from django.core.exceptions import DisallowedHost, RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.views import defaults
from django.views.csrf import csrf_failure as django_csrf_failure

API_PREFIX = "/api/"

logger = logging.getLogger(__name__)

# The database cannot be reached (restarting, failing over, out of connections): the
# request is answered 503, and a client may try again shortly. Each write is one
# transaction, so the database kept all of it or none of it.
DATABASE_DOWN = (OperationalError, InterfaceError)
RETRY_AFTER_SECONDS = 30

# What a bare status means when Django or ninja answered without a JSON body.
STATUS_ERRORS: dict[int, tuple[str, str]] = {
    400: ("The request is malformed.", "malformed_request"),
    401: ("Authentication required.", "not_authenticated"),
    403: ("You may not do this.", "permission_denied"),
    404: ("No API endpoint at this address.", "not_found"),
    405: ("This method is not allowed here.", "method_not_allowed"),
    413: ("The request body is too large.", "request_too_large"),
    429: ("Too many requests. Wait a while, then try again.", "too_many_attempts"),
}


def is_api(request: HttpRequest) -> bool:
    return request.path_info.startswith(API_PREFIX)


def json_error(status: int, detail: str, code: str) -> JsonResponse:
    return JsonResponse({"detail": detail, "code": code}, status=status)


def status_error(status: int) -> JsonResponse:
    detail, code = STATUS_ERRORS.get(
        status,
        ("Something went wrong on our side.", "server_error")
        if status >= 500
        else ("The request was refused.", "http_error"),
    )
    return json_error(status, detail, code)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if isinstance(exception, RequestDataTooBig):
        # 413, not Django's 400: the form was not read because of its size alone.
        if is_api(request):
            return status_error(413)
        return HttpResponse(render_to_string("413.html", request=request), status=413)
    if not is_api(request):
        return defaults.bad_request(request, exception)
    if isinstance(exception, DisallowedHost):
        return json_error(400, "This host name is not served here.", "bad_host")
    return status_error(400)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if not is_api(request):
        return defaults.permission_denied(request, exception)
    return status_error(403)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if not is_api(request):
        return defaults.page_not_found(request, exception)
    return status_error(404)


def database_unavailable(request: HttpRequest, exc: BaseException) -> HttpResponse:
    """503: JSON under /api/, the friendly page elsewhere (rendered without the database,
    a request or context processors), never a traceback."""
    logger.warning("Database unavailable for %s %s: %s", request.method, request.path_info, exc)
    if is_api(request):
        response: HttpResponse = json_error(
            503,
            "The service is briefly unavailable: its database cannot be reached. Try again "
            "in a moment; a change you sent was either made in full or not at all.",
            "service_unavailable",
        )
    else:
        response = HttpResponse(render_to_string("503.html"), status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def server_error(request: HttpRequest) -> HttpResponse:
    # Django calls this inside its `except`: a database that went away while a
    # middleware used it (the session, the user) is a 503 too, not our fault.
    exc = sys.exc_info()[1]
    if isinstance(exc, DATABASE_DOWN):
        return database_unavailable(request, exc)
    if not is_api(request):
        return defaults.server_error(request)
    return status_error(500)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    if not is_api(request):
        return django_csrf_failure(request, reason)
    return json_error(
        403,
        "CSRF check failed: send the csrftoken cookie's value in the X-CSRFToken header.",
        "csrf_failed",
    )


def client_ip(request: HttpRequest) -> str | None:
    """The address django-axes counts failed logins against.

    Without a trusted proxy this is the socket's peer (REMOTE_ADDR): any client can write
    X-Forwarded-For, so believing it would let an attacker pick the address a lockout
    falls on. Behind TRUSTED_PROXY_COUNT proxies that each append the address they saw,
    the client is the entry that many places from the right of X-Forwarded-For; entries
    further left were written by the client and are ignored."""
    remote: str | None = request.META.get("REMOTE_ADDR") or None
    count: int = settings.TRUSTED_PROXY_COUNT
    if count <= 0:
        return remote
    header: str = request.META.get("HTTP_X_FORWARDED_FOR", "")
    forwarded = [part.strip() for part in header.split(",") if part.strip()]
    if len(forwarded) < count:
        # Fewer entries than trusted proxies: the request did not come through them all,
        # so no entry can be trusted; the peer is the only address nobody could forge.
        return remote
    return forwarded[-count]
