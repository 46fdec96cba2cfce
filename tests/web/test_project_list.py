"""The project list: paged, searchable, filtered by customer and status, and scoped to the
viewer."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tests.billing.helpers import draft_for
from tests.factories import make_project
from tests.web.test_pages import signed_in
from tranche.accounts.models import Customer, User
from tranche.projects.models import Project

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


def rows_on(page: str) -> list[tuple[str, str, str]]:
    """(project, status badge, progress) of each row."""
    return re.findall(
        r'data-label="Project"><a href="/projects/\d+/">([^<]+)</a>.*?'
        r'<span class="badge ps-\w+">(\w+)</span>.*?data-label="Progress">([^<]+)</td>',
        page,
        re.S,
    )


def test_staff_filter_by_customer_and_status_and_see_each_projects_progress(
    staff: User, admin: User, customer_a: Customer, customer_b: Customer
) -> None:
    done = make_project(actor=admin, customer=customer_a, title="Done", percentages=("100",))
    draft_for(done, 1, admin)
    make_project(actor=admin, customer=customer_a, title="Open A")
    make_project(actor=admin, customer=customer_b, title="Open B")
    browser = signed_in(staff)

    everything = browser.get("/projects/").content.decode()
    assert rows_on(everything) == [
        ("Open B", "Active", "0 of 3 milestones done"),
        ("Open A", "Active", "0 of 3 milestones done"),
        ("Done", "Completed", "1 of 1 milestones done"),
    ]
    assert f'<option value="{customer_b.pk}">{customer_b.name}</option>' in everything

    by_customer = browser.get(f"/projects/?customer={customer_a.pk}").content.decode()
    assert names_on(by_customer) == ["Open A", "Done"]
    assert f'<option value="{customer_a.pk}" selected>' in by_customer
    assert names_on(browser.get("/projects/?status=completed").content.decode()) == ["Done"]
    both = browser.get(f"/projects/?status=active&customer={customer_b.pk}").content.decode()
    assert names_on(both) == ["Open B"]
    assert '<option value="active" selected>Active</option>' in both
    none = browser.get("/projects/?status=paid").content.decode()
    assert "No project matches these filters." in none
    # A status nobody knows is ignored rather than an error page.
    assert len(names_on(browser.get("/projects/?status=finished").content.decode())) == 3


def test_paging_keeps_the_filters(staff: User, admin: User, customer_a: Customer) -> None:
    projects(admin, customer_a, 26, "Loft")
    page = signed_in(staff).get(f"/projects/?customer={customer_a.pk}&status=active")
    assert f'href="?customer={customer_a.pk}&amp;status=active&amp;page=2"' in page.content.decode()


def test_a_customer_has_no_customer_filter_and_cannot_use_one(
    alice: User, admin: User, customer_a: Customer, customer_b: Customer
) -> None:
    projects(admin, customer_a, 1, "Kitchen")
    projects(admin, customer_b, 1, "Studio")
    browser = signed_in(alice)
    page = browser.get("/projects/").content.decode()
    assert 'name="customer"' not in page
    assert customer_b.name not in page
    theirs = browser.get(f"/projects/?customer={customer_b.pk}").content.decode()
    assert names_on(theirs) == ["Kitchen 01"]
    assert names_on(browser.get("/projects/?status=active").content.decode()) == ["Kitchen 01"]


def test_a_filtered_page_costs_the_same_queries_with_one_project_or_fifty(
    staff: User, admin: User, customer_a: Customer
) -> None:
    browser = signed_in(staff)
    path = f"/projects/?customer={customer_a.pk}&status=active&q=o"

    def cost() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert browser.get(path).status_code == 200
        return len(queries)

    projects(admin, customer_a, 1, "Loft")
    with_one = cost()
    projects(admin, customer_a, 49, "Barn")
    for project in Project.objects.all()[:10]:
        draft_for(project, 1, admin)
    assert cost() == with_one
