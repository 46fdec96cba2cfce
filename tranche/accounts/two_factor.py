"""Two-factor authentication for the business's own people (django-otp): an authenticator
app (TOTP) and ten one-time recovery codes.

- Staff and admins may set it up; customers are not offered it. A business setting
  (`Business.require_two_factor_for_admins`) makes it required for admins: an admin
  without it is signed in but may only set it up (`TwoFactorMiddleware`).
- Signing in with it is two steps: the password (which does not sign in yet: the
  session only remembers, for a few minutes, whose password was right), then a code
  from the app or a recovery code. Only then is the session signed in, and marked as
  verified by that device (`django_otp.login`).
- A session of someone who has two-factor but was not verified by it (they set it up
  on another device, or were signed in some other way) is ended.
- Codes are throttled by django-otp (each wrong code doubles the wait before the next
  is checked) and a code from the app is accepted once (its time step is remembered).
- Recovery codes are stored as a hash, like API tokens: a copy of the database does not
  hold a second factor.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import REDIRECT_FIELD_NAME, logout
from django.contrib.auth.views import redirect_to_login
from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.utils import timezone
from django_otp.models import VerifyNotAllowed
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from tranche.accounts.business import business_row
from tranche.accounts.models import Business, Role, SecurityEventKind, User
from tranche.accounts.security import security_event
from tranche.core.db import lock_one
from tranche.core.errors import (
    Conflict,
    Invalid,
    NotAuthenticated,
    PermissionDenied,
    TooManyAttempts,
)
from tranche.core.http import is_api

RECOVERY_CODE_COUNT = 10
# 10 characters from 31 that are hard to mix up (no i, l, o, 0, 1): about 49 bits,
# typed as "abcde-fghjk".
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
_TOTP_CODE = re.compile(r"[0-9]{6}")
DEVICE_NAME = "Authenticator app"
# Where a signed-in admin who must set up two-factor may still go.
ENROLMENT_PATHS = ("/account/two-factor/", "/logout/", "/static/", "/favicon.ico")
ENROLMENT_PAGE = "/account/two-factor/enrol/"

Method = Literal["authenticator", "recovery_code"]


# --- who has, may and must use it ------------------------------------------------------


def two_factor_offered(user: User) -> bool:
    return user.is_staff_member


def has_two_factor(user: User) -> bool:
    return bool(TOTPDevice.objects.filter(user=user, confirmed=True).exists())


def two_factor_required_for_admins() -> bool:
    """The business setting (Settings → Security)."""
    return Business.objects.filter(pk=1, require_two_factor_for_admins=True).exists()


def two_factor_required(user: User) -> bool:
    """Admins must use two-factor when the business setting says so."""
    return user.is_admin and two_factor_required_for_admins()


def recovery_codes_left(user: User) -> int:
    return int(StaticToken.objects.filter(device__user=user, device__confirmed=True).count())


# --- recovery codes ----------------------------------------------------------------------


def _normalize(code: str) -> str:
    return "".join(code.split()).replace("-", "").lower()


def _recovery_hash(code: str) -> str:
    # StaticToken.token holds 16 characters: 64 bits of SHA-256 of a 50-bit random code.
    return hashlib.sha256(_normalize(code).encode()).hexdigest()[:16]


def _new_recovery_codes(user: User) -> list[str]:
    """Replace the user's recovery codes with new ones; the plain codes are returned
    once and only their hashes are kept."""
    # The same device, new tokens: a session verified by a recovery code stays verified.
    device = StaticDevice.objects.filter(user=user).order_by("pk").first()
    if device is None:
        device = StaticDevice.objects.create(user=user, name="Recovery codes", confirmed=True)
    device.token_set.all().delete()
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10))
        codes.append(f"{raw[:5]}-{raw[5:]}")
    StaticToken.objects.bulk_create(
        [StaticToken(device=device, token=_recovery_hash(code)) for code in codes]
    )
    return codes


# --- checking a code -------------------------------------------------------------------


@dataclass(frozen=True)
class Verified:
    device: TOTPDevice | StaticDevice
    method: Method


def _wait_sentence(until: datetime | None, now: datetime) -> str:
    seconds = max(1, int(((until or now) - now).total_seconds()) + 1)
    return (
        f"Too many wrong codes: wait {seconds} second{'s' if seconds != 1 else ''}, then try again."
    )


def _verify_with(
    model: type[TOTPDevice] | type[StaticDevice], user: User, token: str, *, confirmed: bool
) -> TOTPDevice | StaticDevice | None:
    """Check `token` on the user's device of this kind, its row locked so two requests
    cannot both use one code. Raises TooManyAttempts while django-otp's throttle waits."""
    with transaction.atomic():
        device = (
            model.objects.select_for_update()
            .filter(user=user, confirmed=confirmed)
            .order_by("pk")
            .first()
        )
        if device is None:
            return None
        allowed, why = device.verify_is_allowed()
        if not allowed:
            if why and why.get("reason") == VerifyNotAllowed.N_FAILED_ATTEMPTS:
                raise TooManyAttempts(
                    _wait_sentence(why.get("locked_until"), timezone.now()),
                    code="two_factor_throttled",
                )
            return None
        return device if device.verify_token(token) else None


def _check_code(user: User, code: str) -> Verified | None:
    """A current code from the app (6 digits) or an unused recovery code."""
    code = "".join(code.split())
    if _TOTP_CODE.fullmatch(code):
        device = _verify_with(TOTPDevice, user, code, confirmed=True)
        return Verified(device, "authenticator") if device else None
    if len(_normalize(code)) == 10:
        device = _verify_with(StaticDevice, user, _recovery_hash(code), confirmed=True)
        return Verified(device, "recovery_code") if device else None
    return None


def two_factor_verify(*, user: User, code: str) -> Verified:
    """The second step of signing in: the device that accepted `code`, with the security
    log told what happened. A recovery code works once."""
    verified = _check_code(user, code)
    if verified is None:
        security_event(
            kind=SecurityEventKind.TWO_FACTOR_FAILED,
            target=user,
            detail="A wrong or already used two-factor code was given.",
        )
        raise NotAuthenticated(
            "That code is not right. Codes change every 30 seconds, and each recovery "
            "code works once.",
            code="two_factor_code_invalid",
        )
    if verified.method == "recovery_code":
        security_event(
            kind=SecurityEventKind.RECOVERY_CODE_USED,
            actor=user,
            detail=f"A recovery code was used; {recovery_codes_left(user)} left.",
        )
    return verified


# --- enrolment, disabling, new codes -------------------------------------------------------


def enrolment_device(*, user: User) -> TOTPDevice:
    """The authenticator being set up: the one already shown (so reloading the page keeps
    the same secret), or a new one. Not in use until confirmed with a code."""
    if not two_factor_offered(user):
        raise PermissionDenied("Two-factor authentication is for staff and admins.")
    if has_two_factor(user):
        raise Conflict("Two-factor authentication is already on.", code="two_factor_on")
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").first()
    return device or TOTPDevice.objects.create(user=user, name=DEVICE_NAME, confirmed=False)


def two_factor_enable(*, user: User, code: str) -> tuple[TOTPDevice, list[str]]:
    """Confirm the authenticator being set up with a code it shows; returns it and the
    new recovery codes (shown once)."""
    if has_two_factor(user):
        raise Conflict("Two-factor authentication is already on.", code="two_factor_on")
    code = "".join(code.split())
    device = (
        _verify_with(TOTPDevice, user, code, confirmed=False)
        if _TOTP_CODE.fullmatch(code)
        else None
    )
    if not isinstance(device, TOTPDevice):
        raise Invalid(
            "That code is not right: type the 6 digits your app shows now.",
            code="two_factor_code_invalid",
        )
    with transaction.atomic():
        lock_one(User, user.pk, not_found="No such user.")
        if TOTPDevice.objects.filter(user=user, confirmed=True).exists():
            raise Conflict("Two-factor authentication is already on.", code="two_factor_on")
        TOTPDevice.objects.filter(pk=device.pk).update(confirmed=True)
        TOTPDevice.objects.filter(user=user, confirmed=False).delete()
        codes = _new_recovery_codes(user)
        security_event(
            kind=SecurityEventKind.TWO_FACTOR_ENABLED,
            actor=user,
            detail=f"Authenticator app set up, {RECOVERY_CODE_COUNT} recovery codes issued.",
        )
    device.confirmed = True
    return device, codes


def _check_proof(user: User, proof: str) -> None:
    """Turning two-factor off or replacing the codes asks for the password or a code, so
    a session left open on a shared computer is not enough."""
    if proof and user.check_password(proof):
        return
    if proof and _check_code(user, proof) is not None:
        return
    raise Invalid(
        "Type your password, or a code from your authenticator app.", code="proof_invalid"
    )


def two_factor_disable(*, actor: User, proof: str) -> None:
    _check_proof(actor, proof)
    with transaction.atomic():
        lock_one(User, actor.pk, not_found="No such user.")
        removed, _ = TOTPDevice.objects.filter(user=actor).delete()
        StaticDevice.objects.filter(user=actor).delete()
        if removed:
            security_event(
                kind=SecurityEventKind.TWO_FACTOR_DISABLED,
                actor=actor,
                detail="Authenticator app and recovery codes removed.",
            )


def two_factor_reset(*, actor: User, user: User) -> None:
    """An admin turns off a colleague's two-factor (a lost phone and lost codes); the
    colleague signs in with the password alone and sets it up again."""
    if not actor.is_admin:
        raise PermissionDenied("Only an admin can do this.", code="admin_only")
    if actor.pk == user.pk:
        raise Conflict("Turn off your own two-factor on your account page.", code="own_account")
    with transaction.atomic():
        lock_one(User, user.pk, not_found="No such user.")
        removed, _ = TOTPDevice.objects.filter(user=user).delete()
        StaticDevice.objects.filter(user=user).delete()
        if not removed:
            raise Conflict(f"{user.email} has no two-factor set up.", code="two_factor_off")
        security_event(
            kind=SecurityEventKind.TWO_FACTOR_DISABLED,
            actor=actor,
            target=user,
            detail=f"Reset by {actor.email}: authenticator app and recovery codes removed.",
        )


def recovery_codes_regenerate(*, actor: User, proof: str) -> list[str]:
    if not has_two_factor(actor):
        raise Conflict("Two-factor authentication is off.", code="two_factor_off")
    _check_proof(actor, proof)
    with transaction.atomic():
        lock_one(User, actor.pk, not_found="No such user.")
        codes = _new_recovery_codes(actor)
        security_event(
            kind=SecurityEventKind.RECOVERY_CODES_REGENERATED,
            actor=actor,
            detail=f"{RECOVERY_CODE_COUNT} new recovery codes; the old ones no longer work.",
        )
    return codes


# --- the password step of a two-step sign-in ---------------------------------------------------

PENDING_KEY = "tranche_two_factor_pending"


def pending_begin(request: HttpRequest, user: User, *, now: datetime) -> None:
    """Remember, in this browser's session, whose password was right. Nobody is signed
    in yet; the new session key keeps a key planted before sign-in from being reused."""
    request.session.cycle_key()
    request.session[PENDING_KEY] = {
        "user": user.pk,
        "hash": user.get_session_auth_hash(),
        "at": now.timestamp(),
        "failures": 0,
    }


def pending_user(request: HttpRequest, *, now: datetime) -> User | None:
    """The person whose password was right a moment ago, if they still may sign in (still
    active, same password, within TWO_FACTOR_PENDING_MINUTES)."""
    pending = request.session.get(PENDING_KEY)
    if not isinstance(pending, dict):
        return None
    age = now.timestamp() - float(pending.get("at", 0))
    limit = timedelta(minutes=settings.TWO_FACTOR_PENDING_MINUTES).total_seconds()
    user = User.objects.filter(pk=int(pending.get("user") or 0), is_active=True).first()
    if not 0 <= age <= limit or user is None or user.get_session_auth_hash() != pending.get("hash"):
        pending_clear(request)
        return None
    return user


# After this many wrong codes the password must be given again.
PENDING_MAX_FAILURES = 5


def pending_failed(request: HttpRequest) -> bool:
    """Count a wrong code; True when the password step must be done again."""
    pending = dict(request.session.get(PENDING_KEY) or {})
    pending["failures"] = int(pending.get("failures", 0)) + 1
    if pending["failures"] >= PENDING_MAX_FAILURES:
        pending_clear(request)
        return True
    request.session[PENDING_KEY] = pending
    return False


def pending_clear(request: HttpRequest) -> None:
    request.session.pop(PENDING_KEY, None)


# --- the rule on every request ---------------------------------------------------------------


class TwoFactorMiddleware:
    """Runs after OTPMiddleware. For a signed-in member of staff:

    - has two-factor but this session was not verified by it: the session ends (it was
      signed in before two-factor was set up, elsewhere, or by a path without a code);
    - an admin who must use two-factor and has not set it up: pages send them to set it
      up, the API refuses (403 `two_factor_enrolment_required`); signing out and the
      set-up pages themselves stay open.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if (
            user.is_authenticated
            and isinstance(user, User)
            and user.is_staff_member
            and not user.is_verified()  # type: ignore[attr-defined]
        ):
            refused = self._refuse(request, user)
            if refused is not None:
                return refused
        return self.get_response(request)

    def _refuse(self, request: HttpRequest, user: User) -> HttpResponse | None:
        if has_two_factor(user):
            logout(request)
            detail = "Sign in again with your password and a two-factor code."
            if is_api(request):
                return JsonResponse({"detail": detail, "code": "two_factor_required"}, status=401)
            messages.info(request, detail)
            return redirect_to_login(
                request.get_full_path(), settings.LOGIN_URL, REDIRECT_FIELD_NAME
            )
        if two_factor_required(user) and not request.path_info.startswith(ENROLMENT_PATHS):
            detail = "Two-factor authentication is required for admins: set it up to continue."
            if is_api(request):
                return JsonResponse(
                    {"detail": detail, "code": "two_factor_enrolment_required"}, status=403
                )
            messages.info(request, detail)
            return redirect(ENROLMENT_PAGE)
        return None


def two_factor_requirement_set(*, actor: User, required: bool) -> bool:
    """Make two-factor required (or optional) for admins. Turning it on asks the admin to
    have set it up themselves first, so the setting never takes effect on its author
    mid-click. Admins without it are sent to set it up on their next request."""
    if not actor.is_admin:
        raise PermissionDenied("Only an admin can do this.", code="admin_only")
    if required and not has_two_factor(actor):
        raise Conflict(
            "Set up two-factor authentication for yourself first (Your account → "
            "Two-factor), then require it for every admin.",
            code="two_factor_off",
        )
    with transaction.atomic():
        business_row()  # exists before it is locked
        row = Business.objects.select_for_update().get(pk=1)
        if row.require_two_factor_for_admins == required:
            return required
        row.require_two_factor_for_admins = required
        row.save(update_fields=["require_two_factor_for_admins", "updated_at"])
        security_event(
            kind=SecurityEventKind.SETTING_CHANGED,
            actor=actor,
            detail="Two-factor authentication is now "
            + ("required for admins." if required else "optional for admins."),
        )
    return required


def team_two_factor(*, user: User) -> QuerySet[User]:
    """The business's active people (admins only), each with `has_two_factor`."""
    if not user.is_admin:
        raise PermissionDenied("Only an admin can do this.", code="admin_only")
    confirmed = TOTPDevice.objects.filter(user=OuterRef("pk"), confirmed=True)
    return (
        User.objects.filter(role__in=[Role.ADMIN, Role.STAFF], is_active=True)
        .annotate(has_two_factor=Exists(confirmed))
        .order_by("role", "email")
    )
