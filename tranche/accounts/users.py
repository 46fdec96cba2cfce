"""Writes for people: inviting (the account half; the email is queued by
`notifications.invitations`), roles, deactivation, profile and passwords.

Who may call these is checked by the entry points (`access.py`); the rules that hold
whoever calls (never the last admin, never yourself) live here."""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from tranche.accounts.models import ApiToken, Customer, Role, SecurityEventKind, User
from tranche.accounts.security import security_event
from tranche.accounts.services import new_user_checks
from tranche.accounts.sessions import sessions_end_for
from tranche.core.db import lock_one, require_atomic
from tranche.core.errors import Conflict, Invalid, NotFound


def _lock_user(user_id: int) -> User:
    return lock_one(User, user_id, not_found=f"User {user_id} does not exist.")


def _check_new_password(user: User, password1: str, password2: str) -> None:
    if not password1:
        raise Invalid("Enter a new password.", code="password_required")
    if password1 != password2:
        raise Invalid(
            "The two new passwords differ: type the same one twice.", code="password_mismatch"
        )
    try:
        validate_password(password1, user)
    except ValidationError as exc:
        raise Invalid(" ".join(exc.messages), code="password_invalid") from None


def user_invite_account(
    *,
    actor: User,
    email: str,
    role: str,
    customer_id: int | None = None,
    full_name: str = "",
) -> User:
    """The account an invitation is for: a new user with no usable password, or the same
    invited user again when they never set one (their earlier link then stops working,
    because the link signs the password hash, which changes here).

    Must run in the transaction that queues the invitation email."""
    require_atomic()
    email = email.strip().lower()
    customer = new_user_checks(email=email, role=role, customer_id=customer_id, lock=True)

    existing = User.objects.select_for_update().filter(email=email).first()
    if existing is not None:
        return _reinvite(existing, role=role, customer=customer)
    user = User(email=email, role=role, customer=customer, full_name=full_name.strip())
    user.set_unusable_password()
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError:  # someone invited the same address a moment ago
        raise Conflict(
            f"{email} was invited a moment ago; refresh the page to see them.",
            code="email_taken",
        ) from None
    return user


def _reinvite(user: User, *, role: str, customer: Customer | None) -> User:
    if user.role != role or user.customer_id != (customer.pk if customer else None):
        where = f"a user of {user.customer.name}" if user.customer else f"a {user.role} user"
        raise Conflict(f"{user.email} is already {where}.", code="email_taken")
    if not user.is_active:
        raise Conflict(
            f"{user.email} is deactivated: reactivate them first, then invite them again.",
            code="user_inactive",
        )
    if user.has_usable_password():
        raise Conflict(
            f"{user.email} has already set a password and can sign in. If they forgot it, "
            "they can ask for a new one on the sign-in page.",
            code="already_joined",
        )
    user.set_unusable_password()
    user.save(update_fields=["password"])
    return user


def user_for_reinvite(*, user_id: int) -> User:
    """Lock an invited user to send them a fresh link (see `user_invite_account`)."""
    require_atomic()
    user = _lock_user(user_id)
    return _reinvite(user, role=user.role, customer=user.customer)


def _lock_active_admins() -> list[int]:
    """Lock every active admin, in pk order, before any other user row: two admins
    demoting each other at the same moment then queue up instead of both succeeding (and
    leaving no admin) or deadlocking on each other's rows."""
    return list(
        User.objects.select_for_update()
        .filter(role=Role.ADMIN, is_active=True)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def _require_not_self_or_last_admin(
    *, actor: User, user: User, admins: list[int], doing: str
) -> None:
    """An admin who removes their own admin rights (or the last admin's) locks everyone
    out of the settings with no way back but the command line."""
    if user.pk == actor.pk:
        raise Conflict(
            f"You cannot {doing} your own account: ask another admin to do it.",
            code="own_account",
        )
    if user.role == Role.ADMIN and user.is_active and admins == [user.pk]:
        raise Conflict(
            f"{user.email} is the last active admin: make someone else an admin first.",
            code="last_admin",
        )


def user_set_role(*, actor: User, user_id: int, role: str) -> User:
    """Make a staff user an admin or an admin staff. Customer users keep their role."""
    if role not in (Role.ADMIN, Role.STAFF):
        raise Invalid("Choose admin or staff.", code="role_invalid")
    with transaction.atomic():
        admins = _lock_active_admins()
        user = _lock_user(user_id)
        if not user.is_staff_member:
            raise NotFound(f"User {user_id} does not exist.", code="user_not_found")
        if user.role == role:
            return user
        if role == Role.STAFF:
            _require_not_self_or_last_admin(actor=actor, user=user, admins=admins, doing="demote")
        before = user.get_role_display()
        user.role = role
        user.save(update_fields=["role"])
        security_event(
            kind=SecurityEventKind.ROLE_CHANGED,
            actor=actor,
            target=user,
            detail=f"{before} → {user.get_role_display()}.",
        )
    return user


def user_deactivate(*, actor: User, user_id: int, now: datetime | None = None) -> User:
    """The user can no longer sign in, their sessions end and their API tokens are
    revoked; everything they did stays, with their name on it."""
    now = now or timezone.now()
    with transaction.atomic():
        admins = _lock_active_admins()
        user = _lock_user(user_id)
        if not user.is_active:
            raise Conflict(f"{user.email} is already deactivated.", code="user_inactive")
        _require_not_self_or_last_admin(actor=actor, user=user, admins=admins, doing="deactivate")
        user.is_active = False
        user.save(update_fields=["is_active"])
        tokens = ApiToken.objects.filter(user=user, revoked_at__isnull=True).update(revoked_at=now)
        sessions = sessions_end_for(user, now=now)
        security_event(
            kind=SecurityEventKind.USER_DEACTIVATED,
            actor=actor,
            target=user,
            detail=f"{sessions} session{'s' if sessions != 1 else ''} ended, "
            f"{tokens} API token{'s' if tokens != 1 else ''} revoked.",
            now=now,
        )
    return user


def user_reactivate(*, actor: User, user_id: int) -> User:
    """They can sign in again with their old password (or an invitation, if they never
    set one); their old API tokens stay revoked."""
    with transaction.atomic():
        user = _lock_user(user_id)
        if user.is_active:
            raise Conflict(f"{user.email} is already active.", code="user_active")
        user.is_active = True
        user.save(update_fields=["is_active"])
        security_event(kind=SecurityEventKind.USER_REACTIVATED, actor=actor, target=user)
    return user


def profile_update(*, actor: User, full_name: str) -> User:
    full_name = " ".join(full_name.split())
    if len(full_name) > 200:
        raise Invalid("Your name can be at most 200 characters.", code="full_name_too_long")
    with transaction.atomic():
        user = _lock_user(actor.pk)
        user.full_name = full_name
        user.save(update_fields=["full_name"])
    return user


def password_change(
    *, actor: User, current: str, password1: str, password2: str, keep_session: str | None = None
) -> User:
    """A signed-in person changes their password: the current one proves it is them.
    Every other session of theirs ends (`keep_session`: the key of the one doing this)."""
    with transaction.atomic():
        user = _lock_user(actor.pk)
        if not user.check_password(current):
            raise Invalid("Your current password is not right.", code="current_password_wrong")
        _check_new_password(user, password1, password2)
        user.set_password(password1)
        user.save(update_fields=["password"])
        ended = sessions_end_for(user, keep=keep_session)
        security_event(
            kind=SecurityEventKind.PASSWORD_CHANGED,
            actor=user,
            detail=f"Changed on the account page; {ended} other session"
            f"{'s' if ended != 1 else ''} ended.",
        )
    return user


def password_set_by_link(*, user: User, password1: str, password2: str) -> User:
    """The person holding a valid set-password link (see `links.user_for_link`) chooses a
    password. The link stops working: it signed the old password hash."""
    with transaction.atomic():
        locked = _lock_user(user.pk)
        if locked.password != user.password or not locked.is_active:
            # Someone used the same link (or was deactivated) while this form was open.
            raise Conflict(
                "This link was used already or is no longer valid: ask for a new one.",
                code="link_invalid",
            )
        _check_new_password(locked, password1, password2)
        had_password = locked.has_usable_password()
        locked.set_password(password1)
        locked.save(update_fields=["password"])
        ended = sessions_end_for(locked)
        security_event(
            kind=SecurityEventKind.PASSWORD_CHANGED,
            actor=locked,
            detail=(
                f"Reset with an emailed link; {ended} session{'s' if ended != 1 else ''} ended."
                if had_password
                else "Chosen with an invitation link."
            ),
        )
    return locked
