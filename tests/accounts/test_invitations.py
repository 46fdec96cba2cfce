"""Invitations and set-password links, as services: what a link is good for, how long,
and what makes it stop working."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from tests.billing.helpers import draft_for
from tests.factories import PASSWORD, make_project
from tests.helpers import unchanged
from tranche.accounts.business import business_profile
from tranche.accounts.links import Purpose, set_password_url, user_for_link
from tranche.accounts.models import Customer, Role, User
from tranche.accounts.services import customer_update
from tranche.accounts.users import password_set_by_link, user_deactivate
from tranche.billing.selectors import customer_balances
from tranche.billing.services.sending import invoice_send
from tranche.core.errors import Conflict, Invalid, NotFound
from tranche.core.money import Money
from tranche.notifications.invitations import user_invite, user_reinvite
from tranche.notifications.models import OutboxEmail

pytestmark = pytest.mark.django_db


def parts(url: str) -> tuple[str, str]:
    uid, token = url.rstrip("/").split("/")[-2:]
    return uid, token


def test_an_invitation_link_works_for_invitation_days_then_expires(
    admin: User, customer_a: Customer, settings: object
) -> None:
    now = timezone.now()
    carol = user_invite(
        actor=admin,
        email="carol@acme.example",
        role=Role.CUSTOMER,
        customer_id=customer_a.pk,
        now=now,
    )
    uid, token = parts(set_password_url(carol, purpose=Purpose.INVITATION, now=now))
    assert user_for_link(uid, token, now=now + timedelta(days=7) - timedelta(seconds=1)) == carol
    assert user_for_link(uid, token, now=now + timedelta(days=7, seconds=1)) is None


def test_a_reset_link_lives_password_reset_hours(alice: User) -> None:
    now = timezone.now()
    uid, token = parts(set_password_url(alice, purpose=Purpose.PASSWORD_RESET, now=now))
    assert user_for_link(uid, token, now=now + timedelta(hours=2) - timedelta(seconds=1)) == alice
    assert user_for_link(uid, token, now=now + timedelta(hours=2, seconds=1)) is None


def test_a_tampered_or_foreign_token_is_refused(alice: User, bob: User) -> None:
    now = timezone.now()
    uid, token = parts(set_password_url(alice, purpose=Purpose.PASSWORD_RESET, now=now))
    bob_uid, _ = parts(set_password_url(bob, purpose=Purpose.PASSWORD_RESET, now=now))
    assert user_for_link(bob_uid, token, now=now) is None
    assert user_for_link(uid, token[:-1] + ("0" if token[-1] != "0" else "1"), now=now) is None
    assert user_for_link(uid, "zzzzzzzzzzzz-" + token.split("-")[1], now=now) is None
    assert user_for_link(uid, "", now=now) is None


def test_a_link_dies_when_the_user_is_deactivated(admin: User, alice: User) -> None:
    now = timezone.now()
    uid, token = parts(set_password_url(alice, purpose=Purpose.PASSWORD_RESET, now=now))
    user_deactivate(actor=admin, user_id=alice.pk)
    assert user_for_link(uid, token, now=now) is None


def test_a_link_used_twice_at_once_sets_the_password_only_once(alice: User) -> None:
    now = timezone.now()
    uid, token = parts(set_password_url(alice, purpose=Purpose.PASSWORD_RESET, now=now))
    first = user_for_link(uid, token, now=now)
    second = user_for_link(uid, token, now=now)
    assert first is not None
    assert second is not None
    password_set_by_link(user=first, password1="first new pass 1", password2="first new pass 1")
    with unchanged(), pytest.raises(Conflict) as refused:
        password_set_by_link(user=second, password1="second pass 22", password2="second pass 22")
    assert refused.value.code == "link_invalid"


def test_inviting_the_same_person_again_refreshes_the_link(
    admin: User, customer_a: Customer
) -> None:
    now = timezone.now()
    first = user_invite(
        actor=admin,
        email="dan@acme.example",
        role=Role.CUSTOMER,
        customer_id=customer_a.pk,
        now=now,
    )
    old = parts(set_password_url(first, purpose=Purpose.INVITATION, now=now))
    again = user_invite(
        actor=admin,
        email="DAN@acme.example",
        role=Role.CUSTOMER,
        customer_id=customer_a.pk,
        now=now + timedelta(seconds=5),
    )
    assert again.pk == first.pk
    assert user_for_link(*old, now=now) is None
    assert OutboxEmail.objects.filter(kind="invitation", to="dan@acme.example").count() == 2


def test_who_cannot_be_invited(
    admin: User, alice: User, customer_a: Customer, customer_b: Customer
) -> None:
    with unchanged():
        with pytest.raises(Conflict, match="has already set a password"):
            user_invite(
                actor=admin, email=alice.email, role=Role.CUSTOMER, customer_id=customer_a.pk
            )
        with pytest.raises(Conflict, match="is already a user of Acme Builders"):
            user_invite(
                actor=admin, email=alice.email, role=Role.CUSTOMER, customer_id=customer_b.pk
            )
        with pytest.raises(Invalid, match="needs a customer"):
            user_invite(actor=admin, email="x@acme.example", role=Role.CUSTOMER)
        with pytest.raises(Invalid, match="Only customer users"):
            user_invite(
                actor=admin, email="x@acme.example", role=Role.STAFF, customer_id=customer_a.pk
            )
        with pytest.raises(NotFound):
            user_invite(actor=admin, email="x@acme.example", role=Role.CUSTOMER, customer_id=999999)
        with pytest.raises(Conflict, match="already set a password"):
            user_reinvite(actor=admin, user_id=alice.pk)


def test_a_deactivated_invitee_is_reactivated_before_a_new_invitation(
    admin: User, customer_a: Customer
) -> None:
    dan = user_invite(
        actor=admin, email="dan@acme.example", role=Role.CUSTOMER, customer_id=customer_a.pk
    )
    user_deactivate(actor=admin, user_id=dan.pk)
    with unchanged(), pytest.raises(Conflict, match="reactivate them first"):
        user_reinvite(actor=admin, user_id=dan.pk)


def test_the_invitation_email_names_the_business_the_customer_and_the_inviter(
    admin: User, customer_a: Customer
) -> None:
    User.objects.filter(pk=admin.pk).update(full_name="Ada Admin")
    admin.refresh_from_db()
    user_invite(
        actor=admin,
        email="o'brien@acme.example",
        full_name="Pat O'Brien",
        role=Role.CUSTOMER,
        customer_id=customer_a.pk,
    )
    email = OutboxEmail.objects.get()
    business = business_profile().name
    assert email.subject == f"Ada Admin invited you to {business}'s client portal"
    assert "Hello Pat O'Brien," in email.body_text
    assert "Acme Builders" in email.body_text
    assert "Pat O&#x27;Brien" in email.body_html
    assert 'lang="en"' in email.body_html


def test_customer_update_checks_and_tidies_like_create(staff: User, customer_a: Customer) -> None:
    updated = customer_update(
        actor=staff,
        customer_id=customer_a.pk,
        name=" Acme Ltd ",
        billing_email=" Pay@Acme.example ",
        contact_name="",
        address="",
        tax_id=" GB123 ",
        payment_terms_days=0,
    )
    assert (updated.name, updated.billing_email, updated.tax_id, updated.payment_terms_days) == (
        "Acme Ltd",
        "pay@acme.example",
        "GB123",
        0,
    )
    with unchanged(), pytest.raises(NotFound):
        customer_update(
            actor=staff,
            customer_id=999999,
            name="x",
            billing_email="",
            contact_name="",
            address="",
            tax_id="",
            payment_terms_days=1,
        )


def test_balances_count_only_sent_open_invoices_never_below_zero(
    admin: User, customer_a: Customer, customer_b: Customer
) -> None:
    from tranche.billing.models import Invoice

    project = make_project(actor=admin, customer=customer_a, total="1000.00")
    sent = invoice_send(actor=admin, invoice_id=draft_for(project, 1, admin).pk)
    other = invoice_send(actor=admin, invoice_id=draft_for(project, 2, admin).pk)
    draft_for(project, 3, admin)
    # Partly paid: only the rest is owed.
    Invoice.objects.filter(pk=sent.pk).update(
        amount_paid=Decimal("100.00"), status="partially_paid"
    )
    Invoice.objects.filter(pk=other.pk).update(status="cancelled")
    assert customer_balances([customer_a.pk, customer_b.pk]) == {
        customer_a.pk: [Money(Decimal("200.00"), "USD")]
    }
    assert customer_balances([]) == {}


def test_a_person_invited_and_signed_in_keeps_their_password(
    admin: User, customer_a: Customer
) -> None:
    carol = user_invite(
        actor=admin, email="carol@acme.example", role=Role.CUSTOMER, customer_id=customer_a.pk
    )
    now = timezone.now()
    uid, token = parts(set_password_url(carol, purpose=Purpose.INVITATION, now=now))
    found = user_for_link(uid, token, now=now)
    assert found is not None
    password_set_by_link(user=found, password1=PASSWORD, password2=PASSWORD)
    carol.refresh_from_db()
    assert carol.check_password(PASSWORD)
    assert user_for_link(uid, token, now=now) is None
