"""One-time links to set a password: the invitation a new user gets, and the link a
person who forgot their password asks for.

Both follow Django's PasswordResetTokenGenerator: the token signs the user's id, email,
password hash and last sign-in with the SECRET_KEY, so it stops working the moment the
password is set (or the user signs in), and it carries the time it was made, so it
expires. An invitation lives INVITATION_DAYS; a reset link PASSWORD_RESET_TIMEOUT
seconds. Nothing is stored: a leaked database holds no usable link."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import Enum

from django.conf import settings
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.utils.crypto import constant_time_compare
from django.utils.encoding import force_bytes, force_str
from django.utils.http import base36_to_int, urlsafe_base64_decode, urlsafe_base64_encode

from tranche.accounts.models import User
from tranche.core.db import valid_id

# Django counts a token's age in seconds since this moment (naive, read as UTC).
_EPOCH = datetime(2001, 1, 1, tzinfo=UTC)


class Purpose(Enum):
    INVITATION = "tranche.accounts.links.invitation"
    PASSWORD_RESET = "tranche.accounts.links.password_reset"

    def lifetime(self) -> timedelta:
        if self is Purpose.INVITATION:
            return timedelta(days=settings.INVITATION_DAYS)
        return timedelta(seconds=settings.PASSWORD_RESET_TIMEOUT)


class _Tokens(PasswordResetTokenGenerator):
    """Django's generator with a salt per purpose (an invitation token is not a reset
    token) and the clock passed in, so a test can step past the expiry."""

    def __init__(self, purpose: Purpose) -> None:
        super().__init__()
        self.key_salt = purpose.value
        self.purpose = purpose

    def make_at(self, user: User, now: datetime) -> str:
        return self._make_token_with_timestamp(user, _seconds(now), self.secret)

    def check_at(self, user: User, token: str, now: datetime) -> bool:
        stamp, _, _signature = token.partition("-")
        try:
            made = base36_to_int(stamp)
        except ValueError:
            return False
        if not any(
            constant_time_compare(self._make_token_with_timestamp(user, made, secret), token)
            for secret in [self.secret, *self.secret_fallbacks]
        ):
            return False
        age = _seconds(now) - made
        return 0 <= age <= self.purpose.lifetime().total_seconds()


def _seconds(now: datetime) -> int:
    return int((now - _EPOCH).total_seconds())


_TOKENS = {purpose: _Tokens(purpose) for purpose in Purpose}


def set_password_url(user: User, *, purpose: Purpose, now: datetime) -> str:
    """The full link, `{BASE_URL}/account/set-password/<uidb64>/<token>/`."""
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = _TOKENS[purpose].make_at(user, now)
    return f"{settings.BASE_URL.rstrip('/')}/account/set-password/{uid}/{token}/"


def user_for_link(uidb64: str, token: str, *, now: datetime) -> User | None:
    """The active user a set-password link was made for, while it is valid; else None
    (a wrong, used, expired or tampered link, or a deactivated user, alike)."""
    if len(uidb64) > 30 or len(token) > 100:
        return None
    try:
        user_id = int(force_str(urlsafe_base64_decode(uidb64)))
    except (ValueError, TypeError, UnicodeDecodeError):
        return None
    if not valid_id(user_id):
        return None
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        return None
    if any(tokens.check_at(user, token, now) for tokens in _TOKENS.values()):
        return user
    return None
