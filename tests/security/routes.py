"""Every route of tranche.urls, found by walking the URL resolver (nothing listed by hand),
each with its path parameters filled with customer A's objects, and one way to ask it.

A route is `(method, pattern)`: the django-ninja operations under /api/ with each method
they declare, every other page with GET and POST (a page's view decides what it
accepts; asking both is how a form action left open to GET, or a page that writes on
GET, is found). The admin site is one group: its model pages follow one rule."""

from __future__ import annotations

import copy
import inspect
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.contrib.contenttypes.models import ContentType
from django.http import HttpResponse
from django.urls import URLPattern, URLResolver, get_resolver
from ninja.operation import PathView

from tests.factories import PASSWORD
from tests.security.world import World, later
from tranche.billing.models import Invoice

PAGE_METHODS = ("GET", "POST")
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
# The admin's model pages, one group per kind of page (changelist, add, change …).
ADMIN_MODEL = re.compile(r"^/admin/(accounts|billing|notifications)/(\w+)/")


@dataclass(frozen=True)
class Route:
    method: str
    pattern: str  # "/api/projects/<project_id>", "/projects/<int:project_id>/"
    api: bool

    @property
    def key(self) -> tuple[str, str]:
        """The table's key: the pattern, or for an admin model page its group."""
        match = ADMIN_MODEL.match(self.pattern)
        if match:
            return (self.method, "/admin/<app>/<model>/" + self.pattern[match.end() :])
        return (self.method, self.pattern)

    @property
    def writes(self) -> bool:
        return self.method in WRITE_METHODS


def _walk(resolver: URLResolver, prefix: str) -> Iterator[tuple[str, Any]]:
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            yield from _walk(entry, prefix + str(entry.pattern))
        else:
            assert isinstance(entry, URLPattern)
            yield prefix + str(entry.pattern), entry.callback


def _path_view(callback: Any) -> PathView | None:
    """The django-ninja PathView behind an operation's view function, if it is one."""
    found = (
        inspect.getclosurevars(callback).nonlocals.get("self")
        if inspect.isfunction(callback)
        else None
    )
    return found if isinstance(found, PathView) else None


def all_routes() -> list[Route]:
    routes: dict[tuple[str, str], Route] = {}
    for pattern, callback in _walk(get_resolver(), "/"):
        view = _path_view(callback)
        if view is not None:
            methods = sorted({m for op in view.operations for m in op.methods})
            api = True
        else:
            methods = list(PAGE_METHODS)
            api = False
        for method in methods:
            routes.setdefault((method, pattern), Route(method, pattern, api))
    return sorted(routes.values(), key=lambda r: (r.pattern, r.method))


# --- filling the parameters ----------------------------------------------------------------

_PARAM = re.compile(r"<(?:(\w+):)?(\w+)>|\(\?P<(\w+)>[^)]*\)")
_ADMIN_OBJECTS = {
    "customer": "customer_a",
    "stripeevent": "stripe_event",
    "invoiceevent": "invoice_event",
    "invoice": "sent",
    "payment": "payment",
    "creditnote": "credit_note",
    "outboxemail": "outbox_email",
}


def values(world: World, variant: str = "") -> dict[str, Any]:
    """Each parameter name's object of customer A. The "draft" variant names instead the
    objects a customer has not been sent (and a payment link no longer valid)."""
    draft = variant == "draft"
    return {
        "customer_id": world.customer_a.pk,
        "project_id": world.project.pk,
        "milestone_id": world.milestone_pending.pk,
        "invoice_id": (world.draft if draft else world.sent).pk,
        "payment_id": world.payment.pk,
        "credit_note_id": world.credit_note.pk,
        "change_order_id": (world.draft_change_order if draft else world.sent_change_order).pk,
        "quote_id": (world.draft_quote if draft else world.sent_quote).pk,
        "rate_id": world.tax_rate.pk,
        "user_id": world.carol.pk,
        "email_id": world.outbox_email.pk,
        "event_id": world.stripe_event.pk,
        # The link of an invoice since cancelled opens nothing any more.
        "token": (world.cancelled_sent if draft else world.sent).pay_token,
        "name": "logo.png",
        "app_label": "billing",
        "url": "nowhere/",
        "content_type_id": ContentType.objects.get_for_model(Invoice).pk,
    }


# A parent and the child named under it: the "mixed" variant names the parent of customer
# A with a child of customer B's, which must not be reached through A's parent.
NESTED = [
    ("project_id", "milestone_id"),
    ("project_id", "invoice_id"),
    ("invoice_id", "payment_id"),
    ("customer_id", "user_id"),
]


def nested(route: Route) -> bool:
    return any(has_param(route, parent) and has_param(route, child) for parent, child in NESTED)


def _mixed(route: Route, world: World) -> dict[str, Any]:
    b_children = {
        "milestone_id": world.milestone_b.pk,
        "invoice_id": world.invoice_b.pk,
        "payment_id": world.payment_b.pk,
        "user_id": world.bob.pk,
    }
    return {
        child: b_children[child]
        for parent, child in NESTED
        if has_param(route, parent) and has_param(route, child)
    }


def path_of(route: Route, world: World, variant: str = "") -> str:
    filled = values(world, variant)
    if variant == "mixed":
        filled.update(_mixed(route, world))
    admin = ADMIN_MODEL.match(route.pattern)
    if admin:
        filled["object_id"] = getattr(world, _ADMIN_OBJECTS[admin.group(2)]).pk
    else:
        filled["object_id"] = world.sent.pk  # the admin's view-on-site shortcut
    if route.pattern.startswith("/account/set-password/"):
        return urlsplit(world.reset_link).path

    def fill(match: re.Match[str]) -> str:
        name = match.group(2) or match.group(3)
        return str(filled[name])

    path = _PARAM.sub(fill, route.pattern)
    # Regex routes of the admin: drop the anchors.
    path = path.replace("^", "").replace("$", "")
    assert not set("<(") & set(path), path
    return path + query_of(route)


def query_of(route: Route) -> str:
    """The query of the routes that need one to be a well-formed request at all."""
    if route.pattern in ("/api/exports/accounting", "/financials/accounting-export"):
        return f"?date_from={later(-30)}&date_to={later(0)}"
    return ""


def has_param(route: Route, *names: str) -> bool:
    return any(f"<{n}>" in route.pattern or f":{n}>" in route.pattern for n in names)


# --- what is sent ------------------------------------------------------------------------------


def api_body(route: Route, world: World) -> Any:
    """A minimal valid body for each API write, so a persona who may act is refused, if
    at all, for the state of the object and not for a malformed request."""
    p = route.pattern
    line = {"description": "Build", "quantity": "1", "unit_price": "1000.00"}
    bodies: dict[tuple[str, str], Any] = {
        ("POST", "/api/auth/token"): {"email": world.carol.email, "password": PASSWORD},
        ("POST", "/api/customers"): {"name": "Initech"},
        ("PUT", "/api/customers/<customer_id>"): {"name": "Acme Builders Ltd"},
        ("POST", "/api/tax-rates"): {"name": "VAT 7", "percentage": "7"},
        ("PATCH", "/api/tax-rates/<rate_id>"): {"name": "VAT 21", "percentage": "21"},
        ("PUT", "/api/settings/tax"): {"price_mode": "exclusive"},
        ("POST", "/api/quotes"): {
            "customer_id": world.customer_a.pk,
            "title": "Shed",
            "currency": "USD",
            "lines": [line],
            "schedule": [{"title": "All", "is_billable": True, "billing_percentage": "100"}],
        },
        ("PATCH", "/api/projects/<project_id>"): {"retainage_percentage": "5"},
        ("POST", "/api/projects/<project_id>/milestones"): {"title": "Snagging"},
        ("PATCH", "/api/projects/<project_id>/milestones/<milestone_id>"): {"title": "Roof"},
        ("PATCH", "/api/projects/<project_id>/invoices/<invoice_id>"): {"description": "Edited"},
        ("POST", "/api/projects/<project_id>/invoices/<invoice_id>/cancel"): {"reason": "Wrong"},
        ("POST", "/api/projects/<project_id>/invoices/<invoice_id>/payments"): {
            "amount": "10.00",
            "method": "bank_transfer",
            "received_on": later(0),
        },
        ("POST", "/api/invoices/send"): {"invoice_ids": [world.draft.pk]},
        ("POST", "/api/projects/<project_id>/change-orders"): {"title": "Porch"},
        ("PATCH", "/api/change-orders/<change_order_id>"): {"title": "Bigger window"},
        ("POST", "/api/change-orders/<change_order_id>/approve"): {
            "name": "Alice Acme",
            "agreed": True,
        },
        ("POST", "/api/change-orders/<change_order_id>/decline"): {"reason": "Not now"},
        ("POST", "/api/invoices/<invoice_id>/credit-notes"): {
            "amount": "1.00",
            "reason": "Goodwill",
        },
        ("POST", "/api/invoices/<invoice_id>/refunds"): {
            "amount": "1.00",
            "method": "bank_transfer",
            "paid_on": later(0),
            "reason": "Overpaid",
            "credit_invoice": False,
        },
    }
    return bodies.get((route.method, p))


def page_form(route: Route, world: World) -> dict[str, Any]:
    """The form a page's POST carries: the fields a person would fill in where the route
    needs them to act; an empty form elsewhere (a refusal must come before any form is
    read)."""
    new_password = "a new and long enough passphrase 7"
    forms: dict[str, dict[str, Any]] = {
        "/login/": {"username": world.carol.email, "password": PASSWORD},
        "/account/forgot-password/": {"email": world.carol.email},
        "/account/set-password/<str:uidb64>/<str:token>/": {
            "password1": new_password,
            "password2": new_password,
        },
        "/pay/<str:token>": {"card_number": "4242 4242 4242 4242"},
    }
    return forms.get(route.pattern, {})


@dataclass
class Answer:
    status: int
    outcome: str
    response: HttpResponse


def outcome_of(route: Route, response: HttpResponse) -> str:
    """The response in the table's words: "ok" (2xx), "login" (sent to sign in first),
    "redir" (elsewhere: a page's post-and-redirect), or the status code."""
    status = response.status_code
    if 200 <= status < 300:
        return "ok"
    if status in (301, 302, 303):
        target = urlsplit(response["Location"])
        if target.path in ("/login/", "/admin/login/") and "next=" in target.query:
            return "login"
        return "redir"
    return str(status)


def ask(client: Any, route: Route, world: World, variant: str = "") -> Answer:
    """Ask once. The client's cookies are put back afterwards, as the database is: a
    sign-out or a sign-in as someone else must not change who asks next."""
    cookies = copy.deepcopy(client.cookies)
    try:
        return _ask(client, route, world, variant)
    finally:
        client.cookies = cookies


def _ask(client: Any, route: Route, world: World, variant: str) -> Answer:
    path = path_of(route, world, variant)
    if route.api:
        body = api_body(route, world) if route.writes else None
        response = client.generic(
            route.method,
            path,
            data=json.dumps(body) if body is not None else "",
            content_type="application/json",
        )
    elif route.method == "GET":
        response = client.get(path)
    else:
        response = client.post(path, page_form(route, world))
    return Answer(response.status_code, outcome_of(route, response), response)
