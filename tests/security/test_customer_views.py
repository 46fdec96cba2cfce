"""Nothing internal reaches a customer, on any route she can call: every GET the access
matrix lets alice (or anyone holding a payment link) read is asked, and

- its JSON, key by key down to every nested object and list item, is held against the
  allow-list of its route (tests/security/allow_lists.py; a customer JSON route without
  one fails);
- its JSON, HTML or PDF (text and embedded e-invoice XML) is searched for the SENTINELS
  planted in internal fields (payment notes and references, the cancel reason, provider
  and Stripe event ids, staff names and emails, a draft invoice, an unsent quote, a draft
  change order, customer B): none may appear.

Bob, a customer of B, is likewise served nothing of A's. The search is shown to work: an
admin reading the same world finds every sentinel."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from django.http import HttpResponse
from pypdf import PdfReader

from tests.figures import record
from tests.security.allow_lists import CUSTOMER_JSON_SHAPES, not_allowed
from tests.security.routes import Route, all_routes, ask, path_of
from tests.security.test_access_matrix import EXPECTED, PERSONAS
from tests.security.world import SECRETS, SENTINELS, World, isolated

pytestmark = pytest.mark.django_db

# Public descriptions, not anyone's data: the API's own schema and its docs page.
NOT_DATA = {"/api/openapi.json", "/api/docs"}


def readable_by(persona: str) -> list[Route]:
    column = PERSONAS.index(persona)
    return [
        route
        for route in all_routes()
        if route.method == "GET"
        and EXPECTED[route.key][column] == "ok"
        and route.pattern not in NOT_DATA
    ]


def customer_routes() -> list[Route]:
    """What alice can read, and what a payment link opens for anyone."""
    return sorted(
        set(readable_by("alice")) | set(readable_by("anonymous")),
        key=lambda r: r.pattern,
    )


def is_pdf(route: Route) -> bool:
    return route.pattern.endswith(("pdf", ".pdf"))


def text_of(response: Any) -> str:
    """Everything a response shows: the body, a PDF's text and its embedded files."""
    kind = response["Content-Type"]
    if kind.startswith("application/pdf"):
        reader = PdfReader(io.BytesIO(response.content))
        parts = [page.extract_text() for page in reader.pages]
        for files in reader.attachments.values():
            parts += [f.decode("utf-8", "replace") for f in files]
        return "\n".join(parts)
    return str(response.content.decode("utf-8", "replace"))


def leaks(text: str) -> list[str]:
    return sorted(name for name, value in (SENTINELS | SECRETS).items() if value in text)


def read(world: World, persona: str, route: Route) -> HttpResponse:
    with isolated():
        answer = ask(world.clients[persona], route, world)
    assert answer.outcome == "ok", (route, persona, answer.status)
    return answer.response


def test_every_customer_json_route_has_an_allow_list() -> None:
    json_routes = {r.pattern for r in customer_routes() if r.api and not is_pdf(r)}
    assert sorted(json_routes - set(CUSTOMER_JSON_SHAPES)) == []
    assert sorted(set(CUSTOMER_JSON_SHAPES) - json_routes) == []


def test_a_customer_is_shown_only_allowed_keys_and_no_sentinel_anywhere(world: World) -> None:
    problems = []
    checked = 0
    for route in customer_routes():
        persona = "alice" if route in readable_by("alice") else "anonymous"
        response = read(world, persona, route)
        where = f"{route.pattern} as {persona}"
        if route.api and response["Content-Type"].startswith("application/json"):
            extra = not_allowed(json.loads(response.content), CUSTOMER_JSON_SHAPES[route.pattern])
            if extra:
                problems.append(f"{where}: keys outside the allow-list {extra}")
        found = leaks(text_of(response))
        if found:
            problems.append(f"{where}: shows {found}")
        checked += 1
    record(
        "access",
        customer_routes_shape_checked=checked,
        sentinels=len(SENTINELS) + len(SECRETS),
    )
    assert problems == [], "\n".join(problems)


def test_a_customer_of_b_is_shown_nothing_of_a(world: World) -> None:
    a_strings = {
        "customer A name": world.customer_a.name,
        "customer A email": world.customer_a.billing_email,
        "A's project": world.project.name,
        "A's invoice number": str(world.sent.number),
        "A's user": world.alice.email,
    }
    problems = []
    # A payment link opens its invoice to whoever holds it: not a route of bob's own.
    for route in [r for r in readable_by("bob") if "<str:token>" not in r.pattern]:
        text = text_of(read(world, "bob", route))
        found = sorted(name for name, value in a_strings.items() if value in text)
        if found:
            problems.append(f"{route.pattern}: shows {found}")
    assert problems == [], "\n".join(problems)


def test_the_search_finds_every_sentinel_where_an_admin_reads(world: World) -> None:
    """The control: the sentinels are really in the world, found by the same search in
    what staff read; and a client secret is shown to nobody."""
    project, sent = world.project.pk, world.sent.pk
    paths = [
        f"/api/projects/{project}/invoices/{sent}",
        f"/api/projects/{project}/invoices",
        "/api/quotes",
        f"/api/projects/{project}/change-orders",
        f"/projects/{project}/activity",
        "/projects/",
        "/customers/",
        f"/customers/{world.customer_b.pk}/",
        f"/admin/billing/invoice/{sent}/change/",
        f"/admin/billing/stripeevent/{world.stripe_event.pk}/change/",
    ]
    seen: set[str] = set()
    client = world.clients["admin"]
    for path in paths:
        with isolated():
            response = client.get(path)
        assert response.status_code == 200, path
        seen |= set(leaks(text_of(response)))
        if "stripeevent" in path:  # the payload is shown, its secret replaced
            assert "[redacted]" in text_of(response)
    assert sorted(set(SENTINELS) - seen) == []
    assert sorted(set(SECRETS) & seen) == []  # the stored event's client secret is redacted
    # And the search reads documents: a PDF's text and its embedded e-invoice XML.
    number = str(world.sent.number)
    with isolated():
        pdf = world.clients["alice"].get(f"/invoices/{sent}/invoice.pdf")
        facturx = world.clients["alice"].get(f"/invoices/{sent}/factur-x.pdf")
    assert number in text_of(pdf)
    embedded = PdfReader(io.BytesIO(facturx.content)).attachments
    assert any(number in f.decode() for files in embedded.values() for f in files)


def test_no_filter_in_the_query_widens_what_a_customer_is_shown(world: World) -> None:
    """Every list and page she reads, asked again with filters naming what is not hers
    (drafts, customer B, B's project, a search for the sentinels): still nothing internal
    and nothing of B's."""
    b, b_project = world.customer_b.pk, world.project_b.pk
    widening = [
        "status=draft",
        f"customer={b}",
        f"customer_id={b}",
        f"project={b_project}",
        f"project_id={b_project}",
        # Searches for parts of B's name and project (a whole one would be echoed back
        # in the search box, and found there).
        "q=Globex",
        "q=B-project",
        "q=SNTL",
    ]
    problems = []
    for route in readable_by("alice"):
        if is_pdf(route):
            continue
        base = path_of(route, world)
        for query in widening:
            path = f"{base}{'&' if '?' in base else '?'}{query}"
            with isolated():
                response = world.clients["alice"].get(path)
            if response.status_code != 200:
                continue  # a filter refused (422) shows nothing either
            if route.api:
                extra = not_allowed(
                    json.loads(response.content), CUSTOMER_JSON_SHAPES[route.pattern]
                )
                if extra:
                    problems.append(f"{path}: keys outside the allow-list {extra}")
            found = leaks(text_of(response))
            if found:
                problems.append(f"{path}: shows {found}")
    assert problems == [], "\n".join(problems)
