"""The JSON API: routers, authentication, and the one place errors become HTTP."""

from __future__ import annotations

import logging
from typing import Any

from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from tranche.accounts.api import (
    auth_router,
    customers_router,
    security_router,
    settings_router,
    tax_rates_router,
)
from tranche.accounts.auth import API_AUTH
from tranche.billing.api.change_orders import project_router as project_change_orders_router
from tranche.billing.api.change_orders import router as change_orders_router
from tranche.billing.api.credit_notes import router as credit_notes_router
from tranche.billing.api.exports import router as exports_router
from tranche.billing.api.invoices import router as invoices_router
from tranche.billing.api.projects import quotes_router as acceptance_router
from tranche.billing.api.projects import router as project_views_router
from tranche.core.api import router as health_router
from tranche.core.errors import DomainError
from tranche.core.http import database_unavailable
from tranche.core.parser import DecimalJSONParser
from tranche.core.schemas import ErrorOut
from tranche.notifications.api import router as readiness_router
from tranche.sales.api import router as quotes_router

logger = logging.getLogger(__name__)

api = NinjaAPI(
    title="Tranche API",
    version="1",
    description="Quotes, projects, milestones and their invoices. Authenticate with "
    "`Authorization: Bearer <token>` from `POST /api/auth/token`, or a browser session.",
    auth=API_AUTH,
    parser=DecimalJSONParser(),
    urls_namespace="api",
    docs_url="/docs",
    openapi_url="/openapi.json",
)
api.add_router("", health_router)
api.add_router("", readiness_router)
api.add_router("/auth", auth_router)
api.add_router("/customers", customers_router)
api.add_router("/tax-rates", tax_rates_router)
api.add_router("/settings", settings_router)
api.add_router("/security-log", security_router)
api.add_router("/quotes", quotes_router)
api.add_router("/quotes", acceptance_router)
api.add_router("/projects", project_views_router)
api.add_router("", invoices_router)
api.add_router("/exports", exports_router)
api.add_router("/projects", project_change_orders_router)
api.add_router("/change-orders", change_orders_router)
api.add_router("", credit_notes_router)


# --- the refusals each operation documents ---------------------------------------------
#
# Every operation can be refused with the `{"detail", "code"}` body the handlers below
# write: a malformed body (400), no credentials (401, where credentials are asked), a role
# that may not (403), an id that is missing or not the caller's (404), a state that does
# not allow it (409), values that break a rule (422). They are documented here, in the
# one place errors become HTTP, rather than on every decorator, so a new operation cannot
# forget them; an operation's own decorator still wins for a status it names itself.
CLIENT_ERRORS = (400, 401, 403, 404, 409, 422)
# The operations that ask for no credentials answer only what their own checks say.
ANONYMOUS_ERRORS = {
    "health": (),
    # A malformed request (a NUL in the query) is refused before the check; 503 is its own.
    "ready": (400,),
    # A wrong password or two-factor code is 401, an admin who must enrol first 403; too
    # many failures lock the login out (django-axes) and too many attempts are rate limited.
    "create_token": (400, 401, 403, 422, 429),
    # A body that is not a signed, well-formed Stripe event.
    "stripe_webhook": (400,),
}


def document_errors(api: NinjaAPI) -> None:
    for _prefix, router in api._routers:
        for path_view in router.path_operations.values():
            for operation in path_view.operations:
                if operation.auth_param is None:
                    statuses = ANONYMOUS_ERRORS[operation.view_func.__name__]
                else:
                    statuses = CLIENT_ERRORS
                for status in statuses:
                    if status not in operation.response_models:
                        operation.response_models[status] = operation._create_response_model(
                            ErrorOut
                        )


document_errors(api)


def error(request: HttpRequest, status: int, detail: str, code: str, **extra: Any) -> HttpResponse:
    return api.create_response(request, {"detail": detail, "code": code, **extra}, status=status)


@api.exception_handler(OperationalError)
@api.exception_handler(InterfaceError)
def on_database_unavailable(request: HttpRequest, exc: Exception) -> HttpResponse:
    # Here and not only in the middleware: in DEBUG ninja would answer with a traceback.
    return database_unavailable(request, exc)


@api.exception_handler(DomainError)
def on_domain_error(request: HttpRequest, exc: DomainError) -> HttpResponse:
    return error(request, exc.status, exc.detail, exc.code)


def _field(loc: list[Any] | tuple[Any, ...]) -> str:
    # ninja prefixes locations with the parameter source and name: ("body", "payload", …).
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path"):
        parts = parts[2:] if len(parts) > 2 and parts[0] == "body" else parts[1:]
    return ".".join(parts) or "body"


@api.exception_handler(ValidationError)
def on_validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    errors = [
        {"field": _field(e.get("loc", ())), "message": str(e.get("msg", "is invalid"))}
        for e in exc.errors
    ]
    summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:3])
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    return error(
        request, 422, f"Invalid request: {summary}{more}.", "validation_error", errors=errors
    )


@api.exception_handler(AuthenticationError)
def on_not_authenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return error(
        request,
        401,
        "Authentication required: send 'Authorization: Bearer <token>' or sign in.",
        "not_authenticated",
    )


@api.exception_handler(HttpError)
def on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    if exc.status_code == 400:
        return error(request, 400, "The request body is not valid JSON.", "malformed_request")
    return error(request, exc.status_code, str(exc), "http_error")


@api.exception_handler(Http404)
def on_not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return error(request, 404, "Not found.", "not_found")
