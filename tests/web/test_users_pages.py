"""Users (admins only), /settings/users/: the business's own people invited, promoted,
demoted, deactivated; never yourself, never the last admin."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tests.factories import PASSWORD, UserFactory
from tests.helpers import unchanged
from tests.web.test_pages import signed_in
from tranche.accounts.models import Role, User
from tranche.notifications.models import OutboxEmail

pytestmark = pytest.mark.django_db


def emails_on(page: str) -> list[str]:
    return re.findall(r'data-label="Email" class="email">([^<\s]+)', page)


def messages_of(page: str) -> str:
    start = page.index('id="messages"')
    return page[start : page.index("</div>", start)]


def test_an_admin_sees_the_team_but_not_customer_users(
    admin: User, staff: User, alice: User
) -> None:
    page = signed_in(admin).get("/settings/users/").content.decode()
    assert emails_on(page) == ["admin@tranche.example", "staff@tranche.example"]
    assert "alice@acme.example" not in page
    assert "(you)" in page
    assert 'aria-label="Make admin: staff@tranche.example"' in page
    assert 'aria-label="Deactivate staff@tranche.example"' in page
    # The admin's own row offers nothing that would be refused.
    assert 'aria-label="Deactivate admin@tranche.example"' not in page


@pytest.mark.parametrize("persona", ["staff", "alice"])
def test_staff_and_customers_may_not_manage_users(
    request: Any, persona: str, admin: User, staff: User
) -> None:
    browser = signed_in(request.getfixturevalue(persona))
    with unchanged():
        assert browser.get("/settings/users/").status_code == 403
        assert (
            browser.post(
                "/settings/users/invite", {"email": "x@y.example", "role": "admin"}
            ).status_code
            == 403
        )
        assert (
            browser.post(f"/settings/users/{admin.pk}/role", {"role": "staff"}).status_code == 403
        )
        assert browser.post(f"/settings/users/{admin.pk}/deactivate").status_code == 403


def test_an_admin_invites_a_staff_member_who_sets_a_password(
    admin: User, after_commit: Any
) -> None:
    browser = signed_in(admin)
    with after_commit(execute=True):
        response = browser.post(
            "/settings/users/invite",
            {"email": "Sam@Tranche.example", "full_name": "Sam Staff", "role": "staff"},
        )
    assert response.status_code == 302
    page = browser.get("/settings/users/").content.decode()
    assert "Invitation sent to sam@tranche.example (staff)." in messages_of(page)
    sam = User.objects.get(email="sam@tranche.example")
    assert (sam.role, sam.customer_id, sam.has_usable_password()) == (Role.STAFF, None, False)
    email = OutboxEmail.objects.get()
    assert email.kind == "invitation"
    link = re.search(r"(/account/set-password/\S+/)", email.body_text)
    assert link
    guest = Client()
    assert (
        guest.post(link.group(1), {"password1": PASSWORD, "password2": PASSWORD})["Location"] == "/"
    )
    assert "Dashboard" in guest.get("/").content.decode()


def test_an_invitation_with_an_unknown_role_is_refused(admin: User) -> None:
    browser = signed_in(admin)
    with unchanged():
        response = browser.post(
            "/settings/users/invite", {"email": "a@b.example", "role": "customer"}
        )
    assert response.status_code == 422
    assert "Choose admin or staff." in response.content.decode()


def test_an_admin_promotes_and_demotes(admin: User, staff: User) -> None:
    browser = signed_in(admin)
    browser.post(f"/settings/users/{staff.pk}/role", {"role": "admin"})
    staff.refresh_from_db()
    assert staff.role == Role.ADMIN
    assert "staff@tranche.example is now admin." in messages_of(
        browser.get("/settings/users/").content.decode()
    )
    browser.post(f"/settings/users/{staff.pk}/role", {"role": "staff"})
    staff.refresh_from_db()
    assert staff.role == Role.STAFF


def test_an_admin_cannot_demote_or_deactivate_themselves(admin: User, staff: User) -> None:
    browser = signed_in(admin)
    with unchanged():
        browser.post(f"/settings/users/{admin.pk}/role", {"role": "staff"})
        browser.post(f"/settings/users/{admin.pk}/deactivate")
    page = browser.get("/settings/users/").content.decode()
    assert "You cannot demote your own account: ask another admin to do it." in messages_of(page)


def test_the_last_active_admin_stays_an_admin(admin: User) -> None:
    from tranche.accounts.users import user_deactivate, user_set_role
    from tranche.core.errors import Conflict

    other = UserFactory.create(email="other@tranche.example", role=Role.ADMIN)
    user_deactivate(actor=other, user_id=admin.pk)
    # `other` is now the only active admin; an admin acting through a script (or a race)
    # still cannot remove them.
    with unchanged(), pytest.raises(Conflict) as refused:
        user_set_role(actor=admin, user_id=other.pk, role=Role.STAFF)
    assert refused.value.status == 409
    assert refused.value.code == "last_admin"
    assert refused.value.detail == (
        "other@tranche.example is the last active admin: make someone else an admin first."
    )
    with unchanged(), pytest.raises(Conflict):
        user_deactivate(actor=admin, user_id=other.pk)


def test_an_admin_deactivates_and_reactivates_a_staff_member(admin: User, staff: User) -> None:
    staff_browser = signed_in(staff)
    browser = signed_in(admin)
    browser.post(f"/settings/users/{staff.pk}/deactivate")
    staff.refresh_from_db()
    assert not staff.is_active
    assert staff_browser.get("/").status_code == 302
    page = browser.get("/settings/users/").content.decode()
    assert "staff@tranche.example is deactivated: they can no longer sign in." in messages_of(page)
    assert "Deactivated" in page
    browser.post(f"/settings/users/{staff.pk}/reactivate")
    staff.refresh_from_db()
    assert staff.is_active


def test_customer_users_are_404_on_the_users_page(admin: User, alice: User) -> None:
    browser = signed_in(admin)
    with unchanged():
        assert (
            browser.post(f"/settings/users/{alice.pk}/role", {"role": "admin"}).status_code == 404
        )
        assert browser.post(f"/settings/users/{alice.pk}/deactivate").status_code == 404
        assert browser.post("/settings/users/999999/deactivate").status_code == 404


def _queries(browser: Client) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert browser.get("/settings/users/").status_code == 200
    return len(queries)


def test_the_users_page_costs_the_same_queries_for_1_or_50_rows(admin: User) -> None:
    browser = signed_in(admin)
    one = _queries(browser)
    for n in range(49):
        UserFactory.create(email=f"team{n}@tranche.example", role=Role.STAFF)
    assert _queries(browser) == one
