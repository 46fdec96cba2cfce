"""Writes for accounts: customers, users, API tokens."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.signals import user_logged_in
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from tranche.accounts.business import business_profile, clean_country, country_problem
from tranche.accounts.models import (
    ApiToken,
    Customer,
    Role,
    SecurityEventKind,
    TaxTreatment,
    User,
)
from tranche.accounts.security import security_event
from tranche.accounts.tokens import hash_token, new_token
from tranche.accounts.two_factor import has_two_factor, two_factor_required, two_factor_verify
from tranche.core.db import lock_one, valid_id
from tranche.core.errors import (
    Conflict,
    Invalid,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
    TooManyAttempts,
)

# Writing last_used_at on every request would turn each API read into a write; once in a
# while is enough to tell which tokens are still in use.
TOKEN_TOUCH_INTERVAL = timedelta(minutes=5)


def _check_email(email: str) -> None:
    """Django's validator also takes `a@[127.0.0.1]` and `a@localhost`; mail to people goes
    to a domain name with a dot in it."""
    domain = email.rpartition("@")[2]
    try:
        validate_email(email)
    except ValidationError:
        pass
    else:
        if not domain.startswith("[") and "." in domain.strip("."):
            return
    raise Invalid(f"{email!r} is not an email address.", code="email_invalid")


def _customer_values(
    *,
    name: str,
    billing_email: str,
    contact_name: str,
    address: str,
    tax_id: str,
    payment_terms_days: int,
    country: str = "",
    tax_treatment: str = TaxTreatment.STANDARD,
) -> dict[str, object]:
    """The checked, tidied values of a customer, for creating and editing alike."""
    name = name.strip()
    if not name:
        raise Invalid("A customer needs a name.", code="name_required")
    if not 0 <= payment_terms_days <= 365:
        raise Invalid("Payment terms must be between 0 and 365 days.", code="payment_terms_invalid")
    billing_email = billing_email.strip().lower()
    if billing_email:
        _check_email(billing_email)
    country = clean_country(country)
    if country and (problem := country_problem(country)):
        raise Invalid(problem, code="country_invalid")
    if tax_treatment not in TaxTreatment.values:
        raise Invalid(
            f"Tax treatment must be one of {', '.join(TaxTreatment.values)}.",
            code="tax_treatment_invalid",
        )
    return {
        "name": name,
        "billing_email": billing_email,
        "contact_name": contact_name.strip(),
        "address": address.strip(),
        "tax_id": tax_id.strip(),
        "payment_terms_days": payment_terms_days,
        "country": country,
        "tax_treatment": tax_treatment,
    }


def customer_create(
    *,
    actor: User,
    name: str,
    billing_email: str = "",
    contact_name: str = "",
    address: str = "",
    tax_id: str = "",
    payment_terms_days: int | None = None,
    country: str = "",
    tax_treatment: str = TaxTreatment.STANDARD,
) -> Customer:
    """A new customer; payment terms default to the business's own default terms."""
    if payment_terms_days is None:
        payment_terms_days = business_profile().payment_terms_days
    values = _customer_values(
        name=name,
        billing_email=billing_email,
        contact_name=contact_name,
        address=address,
        tax_id=tax_id,
        payment_terms_days=payment_terms_days,
        country=country,
        tax_treatment=tax_treatment,
    )
    return Customer.objects.create(**values)


def customer_update(
    *,
    actor: User,
    customer_id: int,
    name: str,
    billing_email: str,
    contact_name: str,
    address: str,
    tax_id: str,
    payment_terms_days: int,
    country: str = "",
    tax_treatment: str = TaxTreatment.STANDARD,
) -> Customer:
    """Replace a customer's details. Invoices already sent keep the terms they were sent
    with: only invoices sent from now on use the new terms. A new tax treatment applies
    to invoices sent from now on, drafts included (they are taxed again when sent)."""
    values = _customer_values(
        name=name,
        billing_email=billing_email,
        contact_name=contact_name,
        address=address,
        tax_id=tax_id,
        payment_terms_days=payment_terms_days,
        country=country,
        tax_treatment=tax_treatment,
    )
    with transaction.atomic():
        customer = lock_one(
            Customer, customer_id, not_found=f"Customer {customer_id} does not exist."
        )
        for field, value in values.items():
            setattr(customer, field, value)
        customer.save(update_fields=[*values, "updated_at"])
    return customer


def new_user_checks(
    *, email: str, role: str, customer_id: int | None, lock: bool = False
) -> Customer | None:
    """What every way of making an account checks first (an email that can sign in, a
    known role, a customer for a customer user and none for staff); returns the customer
    the user belongs to, locked when `lock` (an invitation runs in its email's
    transaction)."""
    _check_email(email)
    if role not in Role.values:
        raise Invalid(f"Role must be one of {', '.join(Role.values)}.", code="role_invalid")
    if role != Role.CUSTOMER:
        if customer_id is not None:
            raise Invalid("Only customer users belong to a customer.", code="customer_not_allowed")
        return None
    if customer_id is None:
        raise Invalid("A customer user needs a customer.", code="customer_required")
    missing = f"Customer {customer_id} does not exist."
    if lock:
        return lock_one(Customer, customer_id, not_found=missing)
    customer = Customer.objects.filter(pk=customer_id).first() if valid_id(customer_id) else None
    if customer is None:
        raise NotFound(missing, code="customer_not_found")
    return customer


def user_create(
    *, email: str, password: str, role: str, customer_id: int | None = None, full_name: str = ""
) -> User:
    email = email.strip().lower()
    customer = new_user_checks(email=email, role=role, customer_id=customer_id)
    user = User(email=email, role=role, customer=customer, full_name=full_name.strip())
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise Invalid(" ".join(exc.messages), code="password_invalid") from None
    user.set_password(password)
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError:
        raise Conflict(f"A user with email {email} already exists.", code="email_taken") from None
    return user


def token_create(
    *, user: User, now: datetime | None = None, actor: User | None = None, how: str = ""
) -> str:
    """Issue a new API token for `user`; the plain token is returned once and never stored
    (the security log names only its first characters, which identify it)."""
    token = new_token()
    with transaction.atomic():
        ApiToken.objects.create(
            user=user,
            token_hash=hash_token(token),
            prefix=token[:12],
            created_at=now or timezone.now(),
        )
        security_event(
            kind=SecurityEventKind.TOKEN_CREATED,
            actor=actor,
            target=user,
            detail=f"Token {token[:12]}… created{f' {how}' if how else ''}.",
            now=now,
        )
    return token


def _account(email: str) -> User | None:
    """The account an email typed at sign-in names, if any (for the security log)."""
    return User.objects.filter(email=email.strip().lower()).first()


def _log_refused_sign_in(request: HttpRequest, email: str, locked: bool) -> None:
    target = _account(email)
    failures = getattr(request, "axes_failures_since_start", None)
    if locked and failures == settings.AXES_FAILURE_LIMIT:
        # django-axes counted this failure and it reached the limit: the lockout begins.
        # (Attempts during the lockout are counted too, beyond the limit.)
        security_event(
            kind=SecurityEventKind.LOCKOUT,
            target=target,
            detail=(
                f"Locked out after {failures} failed sign-ins from this address."
                if target
                else "An email that is no account was locked out after repeated failures."
            ),
        )
    elif locked:
        security_event(
            kind=SecurityEventKind.SIGN_IN_FAILED,
            target=target,
            detail="Refused: this email is locked out at this address.",
        )
    elif target is None:
        # Not the email typed: people type their password into the email field.
        security_event(
            kind=SecurityEventKind.SIGN_IN_FAILED, detail="No account has the email typed."
        )
    else:
        security_event(
            kind=SecurityEventKind.SIGN_IN_FAILED,
            target=target,
            detail="Wrong password." if target.is_active else "The account is deactivated.",
        )


def authenticate_login(*, request: HttpRequest, email: str, password: str) -> User:
    """The one way a person proves who they are, for the sign-in form and the API alike.

    Goes through Django's `authenticate` so django-axes counts each failure against the
    (email, address) pair and refuses a locked-out pair; the email is matched however
    it is cased, as accounts store it in lower case."""
    user = authenticate(request, username=email.strip().lower(), password=password)
    if getattr(request, "axes_locked_out", False):
        _log_refused_sign_in(request, email, locked=True)
        raise TooManyAttempts(
            "Too many failed sign-in attempts. Wait a while, then try again.",
            code="too_many_attempts",
        )
    if not isinstance(user, User) or not user.is_active:
        _log_refused_sign_in(request, email, locked=False)
        raise NotAuthenticated("Email or password is incorrect.", code="invalid_credentials")
    return user


def token_login(*, request: HttpRequest, email: str, password: str, code: str | None = None) -> str:
    """Exchange an email and password for a new API token.

    A token is as good as a signed-in session, so it asks for the same factors as the
    sign-in page: someone with two-factor must also give a current code (or a recovery
    code), and an admin who must use two-factor and has not set it up gets no token
    until they have (in the browser).

    A token login is a login: Django's `user_logged_in` is what django-axes listens to
    to clear the failures counted against this account (and what stamps last_login),
    exactly as the sign-in form's `login()` sends it."""
    user = authenticate_login(request=request, email=email, password=password)
    how = "by signing in to the API with the password"
    if has_two_factor(user):
        if not code:
            raise NotAuthenticated(
                "This account uses two-factor authentication: send a current code from the "
                "authenticator app, or a recovery code, as `code`.",
                code="two_factor_required",
            )
        verified = two_factor_verify(user=user, code=code)
        how += " and a recovery code" if verified.method == "recovery_code" else " and a code"
    elif two_factor_required(user):
        raise PermissionDenied(
            "Two-factor authentication is required for admins: set it up on your account "
            "page in the browser, then ask for a token with a code.",
            code="two_factor_enrolment_required",
        )
    user_logged_in.send(sender=type(user), request=request, user=user)
    return token_create(user=user, actor=user, how=how)


def token_authenticate(*, token: str, now: datetime | None = None) -> User | None:
    """The active user behind a live token, or None."""
    now = now or timezone.now()
    api_token = (
        ApiToken.objects.select_related("user", "user__customer")
        .filter(token_hash=hash_token(token), revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    if api_token is None:
        return None
    if api_token.last_used_at is None or now - api_token.last_used_at > TOKEN_TOUCH_INTERVAL:
        ApiToken.objects.filter(pk=api_token.pk).update(last_used_at=now)
    return api_token.user


def token_revoke(*, token: str, actor: User | None = None, now: datetime | None = None) -> None:
    now = now or timezone.now()
    with transaction.atomic():
        found = (
            ApiToken.objects.select_for_update()
            .filter(token_hash=hash_token(token), revoked_at__isnull=True)
            .select_related("user")
            .first()
        )
        if found is None:
            raise NotFound(
                "That token does not exist or is already revoked.", code="token_not_found"
            )
        found.revoked_at = now
        found.save(update_fields=["revoked_at"])
        security_event(
            kind=SecurityEventKind.TOKEN_REVOKED,
            actor=actor or found.user,
            target=found.user,
            detail=f"Token {found.prefix}… revoked.",
            now=now,
        )
