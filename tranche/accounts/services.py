"""Writes for accounts: customers, users, API tokens."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.contrib.auth import authenticate
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.signals import user_logged_in
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from tranche.accounts.business import business_profile, clean_country, country_problem
from tranche.accounts.models import ApiToken, Customer, Role, TaxTreatment, User
from tranche.accounts.tokens import hash_token, new_token
from tranche.core.db import lock_one, valid_id
from tranche.core.errors import Conflict, Invalid, NotAuthenticated, NotFound, TooManyAttempts

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


def token_create(*, user: User, now: datetime | None = None) -> str:
    """Issue a new API token for `user`; the plain token is returned once and never stored."""
    token = new_token()
    ApiToken.objects.create(
        user=user,
        token_hash=hash_token(token),
        prefix=token[:12],
        created_at=now or timezone.now(),
    )
    return token


def authenticate_login(*, request: HttpRequest, email: str, password: str) -> User:
    """The one way a person proves who they are, for the sign-in form and the API alike.

    Goes through Django's `authenticate` so django-axes counts each failure against the
    (email, address) pair and refuses a locked-out pair; the email is matched however
    it is cased, as accounts store it in lower case."""
    user = authenticate(request, username=email.strip().lower(), password=password)
    if getattr(request, "axes_locked_out", False):
        raise TooManyAttempts(
            "Too many failed sign-in attempts. Wait a while, then try again.",
            code="too_many_attempts",
        )
    if not isinstance(user, User) or not user.is_active:
        raise NotAuthenticated("Email or password is incorrect.", code="invalid_credentials")
    return user


def token_login(*, request: HttpRequest, email: str, password: str) -> str:
    """Exchange an email and password for a new API token.

    A token login is a login: Django's `user_logged_in` is what django-axes listens to
    to clear the failures counted against this account (and what stamps last_login),
    exactly as the sign-in form's `login()` sends it."""
    user = authenticate_login(request=request, email=email, password=password)
    user_logged_in.send(sender=type(user), request=request, user=user)
    return token_create(user=user)


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


def token_revoke(*, token: str, now: datetime | None = None) -> None:
    revoked = ApiToken.objects.filter(token_hash=hash_token(token), revoked_at__isnull=True).update(
        revoked_at=now or timezone.now()
    )
    if not revoked:
        raise NotFound("That token does not exist or is already revoked.", code="token_not_found")
