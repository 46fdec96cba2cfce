"""The signed-in pages: customers see only their own projects."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.factories import PASSWORD
from tranche.accounts.models import User
from tranche.projects.models import Project

pytestmark = pytest.mark.django_db


def signed_in(user: User) -> Client:
    client = Client()
    response = client.post("/login/", {"username": user.email, "password": PASSWORD})
    assert response.status_code == 302
    return client


def test_anonymous_visitors_are_sent_to_sign_in() -> None:
    response = Client().get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
    assert "Sign in" in Client().get("/login/").content.decode()


def test_staff_see_every_project_with_its_schedule(
    staff: User, project_a: Project, project_b: Project
) -> None:
    page = signed_in(staff).get("/").content.decode()
    assert "Kitchen for A" in page
    assert "Studio for B" in page
    detail = signed_in(staff).get(f"/projects/{project_a.pk}/").content.decode()
    assert "$300.00" in detail
    assert "$400.00" in detail


def test_a_customer_sees_only_their_own_projects(
    alice: User, project_a: Project, project_b: Project
) -> None:
    client = signed_in(alice)
    page = client.get("/").content.decode()
    assert "Kitchen for A" in page
    assert "Studio for B" not in page
    assert client.get(f"/projects/{project_b.pk}/").status_code == 404
    assert client.get(f"/projects/{project_a.pk}/").status_code == 200


def test_a_wrong_password_on_the_sign_in_page_says_so(staff: User) -> None:
    response = Client().post("/login/", {"username": staff.email, "password": "nope"})
    assert response.status_code == 200
    assert "Email or password is incorrect." in response.content.decode()
