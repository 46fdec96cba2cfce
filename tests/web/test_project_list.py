"""The home page's project list: paged, searchable, and scoped to the viewer."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tests.factories import make_project
from tests.web.test_pages import signed_in
from tranche.accounts.models import Customer, User

pytestmark = pytest.mark.django_db


def names_on(page: str) -> list[str]:
    return re.findall(r'data-label="Project"><a href="/projects/\d+/">([^<]+)</a>', page)


def projects(admin: User, customer: Customer, count: int, prefix: str) -> None:
    for n in range(1, count + 1):
        make_project(actor=admin, customer=customer, title=f"{prefix} {n:02d}")


def test_staff_page_through_thirty_projects_newest_first(
    staff: User, admin: User, customer_a: Customer
) -> None:
    projects(admin, customer_a, 30, "Loft")
    browser = signed_in(staff)

    first = browser.get("/projects/").content.decode()
    second = browser.get("/projects/?page=2").content.decode()

    assert names_on(first) == [f"Loft {n:02d}" for n in range(30, 5, -1)]
    assert "Page 1 of 2 · 30 projects" in first
    assert 'href="?page=2"' in first
    assert names_on(second) == [f"Loft {n:02d}" for n in range(5, 0, -1)]
    assert 'href="?page=1"' in second
    # Past the end is the last page, not an error.
    assert names_on(browser.get("/projects/?page=99").content.decode()) == names_on(second)


def test_staff_search_projects_by_their_name_or_their_customers(
    staff: User, admin: User, customer_a: Customer, customer_b: Customer
) -> None:
    projects(admin, customer_a, 2, "Kitchen")
    projects(admin, customer_b, 1, "Studio")
    browser = signed_in(staff)

    assert names_on(browser.get("/projects/?q=kitch").content.decode()) == [
        "Kitchen 02",
        "Kitchen 01",
    ]
    assert names_on(browser.get("/projects/?q=Globex").content.decode()) == ["Studio 01"]
    nothing = browser.get("/projects/?q=Nowhere").content.decode()
    assert names_on(nothing) == []
    assert "No project matches “Nowhere”." in nothing


def test_a_customer_searches_only_her_own_projects(
    alice: User, admin: User, customer_a: Customer, customer_b: Customer
) -> None:
    projects(admin, customer_a, 1, "Kitchen")
    projects(admin, customer_b, 1, "Studio")
    browser = signed_in(alice)

    assert names_on(browser.get("/projects/").content.decode()) == ["Kitchen 01"]
    assert names_on(browser.get("/projects/?q=Studio").content.decode()) == []
    assert names_on(browser.get("/projects/?q=Globex").content.decode()) == []


def _queries_for_home(browser: Client) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = browser.get("/projects/")
    assert response.status_code == 200
    return len(queries)


def test_a_page_costs_the_same_queries_with_one_project_or_fifty(
    staff: User, admin: User, customer_a: Customer
) -> None:
    browser = signed_in(staff)
    projects(admin, customer_a, 1, "Loft")
    with_one = _queries_for_home(browser)
    projects(admin, customer_a, 49, "Barn")
    assert _queries_for_home(browser) == with_one
