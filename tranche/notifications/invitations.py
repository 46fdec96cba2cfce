"""Emails that give a person a one-time link to set their password: an invitation (the
account and the email in one transaction) and a forgotten password.

These live here, above accounts, because each writes an account change and queues its
email together; `accounts` knows nothing of the outbox."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from tranche.accounts.business import business_profile
from tranche.accounts.links import Purpose, set_password_url
from tranche.accounts.models import User
from tranche.accounts.users import user_for_reinvite, user_invite_account
from tranche.notifications.models import OutboxEmail
from tranche.notifications.services import outbox_enqueue

# Asking for a reset link again and again must not turn us into a mail cannon aimed at
# someone's inbox: one email per address per this interval, whatever is asked.
RESET_EMAIL_INTERVAL = timedelta(minutes=1)

INVITATION_KIND = "invitation"
PASSWORD_RESET_KIND = "password_reset"


def _queue_invitation(user: User, *, actor: User, now: datetime) -> None:
    profile = business_profile()
    outbox_enqueue(
        # One per invitation sent: inviting again sends a fresh link.
        key=f"{INVITATION_KIND}:{user.pk}:{now.isoformat()}",
        kind=INVITATION_KIND,
        to=user.email,
        template="invitation",
        context={
            "business_name": profile.name,
            "greeting_name": user.full_name or user.email,
            # A person's name, or the business's: an address alone reads like spam.
            "inviter_name": actor.full_name or profile.name,
            "customer_name": user.customer.name if user.customer else "",
            "is_customer": user.is_customer,
            "link": set_password_url(user, purpose=Purpose.INVITATION, now=now),
            "days": Purpose.INVITATION.lifetime().days,
            "email": user.email,
        },
        now=now,
    )


def user_invite(
    *,
    actor: User,
    email: str,
    role: str,
    customer_id: int | None = None,
    full_name: str = "",
    now: datetime | None = None,
) -> User:
    """Create the account (or refresh a pending invitation) and email the link."""
    now = now or timezone.now()
    with transaction.atomic():
        user = user_invite_account(
            actor=actor, email=email, role=role, customer_id=customer_id, full_name=full_name
        )
        _queue_invitation(user, actor=actor, now=now)
    return user


def user_reinvite(*, actor: User, user_id: int, now: datetime | None = None) -> User:
    """A fresh link for someone who has not set a password yet; the old link stops working."""
    now = now or timezone.now()
    with transaction.atomic():
        user = user_for_reinvite(user_id=user_id)
        _queue_invitation(user, actor=actor, now=now)
    return user


def password_reset_request(*, email: str, now: datetime | None = None) -> bool:
    """Email a reset link to the active account with this address. The caller tells the
    person the same thing whatever happens (no telling who has an account); the result,
    True when an email was queued, is for tests and logs."""
    now = now or timezone.now()
    email = email.strip().lower()
    if not email or len(email) > 254:
        return False
    with transaction.atomic():
        # The user's row lock serializes two requests for the same address, so the
        # "one a minute" check below cannot be raced.
        user = User.objects.select_for_update().filter(email=email, is_active=True).first()
        if user is None:
            return False
        # Keyed by the minute: the unique key refuses a second email in the same minute,
        # and the exact (indexed) lookup of the previous minute's key catches one sent
        # less than a minute ago across the boundary.
        minute = int(now.timestamp() // RESET_EMAIL_INTERVAL.total_seconds())
        previous = OutboxEmail.objects.filter(key=_reset_key(user, minute - 1)).first()
        if previous is not None and previous.created_at > now - RESET_EMAIL_INTERVAL:
            return False
        queued = outbox_enqueue(
            key=_reset_key(user, minute),
            kind=PASSWORD_RESET_KIND,
            to=user.email,
            template="password_reset",
            context={
                "business_name": business_profile().name,
                "greeting_name": user.full_name or user.email,
                "link": set_password_url(user, purpose=Purpose.PASSWORD_RESET, now=now),
                "hours": int(Purpose.PASSWORD_RESET.lifetime().total_seconds() // 3600),
                "email": user.email,
            },
            now=now,
        )
    return queued is not None


def _reset_key(user: User, minute: int) -> str:
    return f"{PASSWORD_RESET_KIND}:{user.pk}:{minute}"
