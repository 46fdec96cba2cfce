"""Request and response rules that hold for every URL: NUL bytes refused, a
Content-Security-Policy on every answer, no caching of signed-in pages or the API, and
JSON for every error under /api/."""

from __future__ import annotations

import re
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils.cache import add_never_cache_headers
from django.views import defaults

from tranche.core.http import DATABASE_DOWN, database_unavailable, is_api, json_error, status_error

GetResponse = Callable[[HttpRequest], HttpResponse]

# A JSON string escape for NUL: `\u0000` whose backslash is not itself escaped (an even
# run of backslashes before it, possibly none).
_JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
_FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")
_BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def _has_nul(request: HttpRequest) -> bool:
    if "\x00" in request.path:
        return True
    if any(
        "\x00" in key or any("\x00" in value for value in values)
        for key, values in request.GET.lists()
    ):
        return True
    # Headers and cookies reach the database too: axes stores the user agent and Accept
    # of a failed login, the session middleware looks its cookie up.
    if any(isinstance(v, str) and "\x00" in v for k, v in request.META.items() if k[:5] == "HTTP_"):
        return True
    if request.method not in _BODY_METHODS:
        return False
    # Read the body first: once request.POST has consumed the stream, a view that wants
    # the raw bytes (the Stripe webhook checks its signature on them) could not have them.
    body = request.body
    if request.content_type == "multipart/form-data":
        # An uploaded file (a logo) is binary and full of NULs, and is never stored as
        # text: only the text fields and the file names are checked.
        return any(
            "\x00" in key or any("\x00" in value for value in values)
            for key, values in request.POST.lists()
        ) or any(
            "\x00" in (upload.name or "")
            for _, uploads in request.FILES.lists()
            for upload in uploads
        )
    if b"\x00" in body:
        return True
    if request.content_type in _FORM_TYPES:
        return any(
            "\x00" in key or any("\x00" in value for value in values)
            for key, values in request.POST.lists()
        )
    return _JSON_NUL.search(body) is not None


class RejectNulBytesMiddleware:
    """PostgreSQL cannot store NUL in text, and psycopg raises on it: a 500 for a request
    that is simply malformed. No field of ours may hold one, so refuse it at the door."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if _has_nul(request):
            if is_api(request):
                return json_error(400, "The request contains a NUL character.", "nul_character")
            return defaults.bad_request(request, ValueError("NUL character in the request"))
        return self.get_response(request)


# Stripe's Payment Element, as Stripe documents its CSP: the script and its frames from
# js.stripe.com, 3-D Secure frames from hooks.stripe.com, API calls to api.stripe.com.
_STRIPE = {
    "script-src": ["https://js.stripe.com", "https://*.js.stripe.com"],
    "frame-src": ["https://js.stripe.com", "https://*.js.stripe.com", "https://hooks.stripe.com"],
    "connect-src": ["https://api.stripe.com"],
    "img-src": ["https://*.stripe.com"],
}


def content_security_policy(request: HttpRequest) -> str:
    directives: dict[str, list[str]] = {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "frame-src": ["'none'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
    path = request.path_info
    if path.startswith("/pay/"):
        for name, sources in _STRIPE.items():
            directives[name] = [s for s in directives[name] if s != "'none'"] + sources
    elif path.startswith("/api/docs"):
        # Swagger UI's scripts are static files, but it styles its widgets with inline CSS.
        directives["style-src"] = ["'self'", "'unsafe-inline'"]
    return "; ".join(f"{name} {' '.join(sources)}" for name, sources in directives.items())


class SecurityHeadersMiddleware:
    """A Content-Security-Policy on every response, and `Cache-Control: no-store` on what
    must not linger in a shared or browser cache: the API, pay pages (their URL is the
    credential) and every page of a signed-in user."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.setdefault("Content-Security-Policy", content_security_policy(request))
        path = request.path_info
        user = getattr(request, "user", None)
        signed_in = user is not None and user.is_authenticated
        if path.startswith(("/api/", "/pay/")) or signed_in:
            add_never_cache_headers(response)
        return response


class ApiJsonErrorsMiddleware:
    """The last word on /api/ errors: whatever answered (Django's CSRF or host checks,
    ninja's 405, a handler's HTML page in DEBUG), a client of the API gets
    `{"detail", "code"}`. The Swagger page itself is the one HTML page under /api/."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            response.status_code >= 400
            and is_api(request)
            and not request.path_info.startswith("/api/docs")
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            replacement = status_error(response.status_code)
            for header in ("Allow", "Retry-After", "WWW-Authenticate"):
                if header in response:
                    replacement[header] = response[header]
            return replacement
        return response


class DatabaseUnavailableMiddleware:
    """A view that meets an unreachable database answers 503 (JSON under /api/, the
    friendly page elsewhere) instead of a server error. Django's handler500
    (`tranche.core.http.server_error`) does the same for a middleware that meets it."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, DATABASE_DOWN):
            return database_unavailable(request, exception)
        return None
