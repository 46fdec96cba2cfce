"""Factories for test data. Quotes and projects are made through the real services so
every test starts from a state the product itself could reach."""

from __future__ import annotations

import time
from decimal import Decimal
from functools import cache
from typing import Any

import factory
from django.contrib.auth.hashers import make_password
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from tranche.accounts.models import Customer, Role, User
from tranche.accounts.two_factor import enrolment_device, two_factor_enable
from tranche.billing.services.acceptance import quote_accept
from tranche.projects.models import Project
from tranche.sales.models import Quote
from tranche.sales.services import LineInput, ScheduleInput, quote_create

PASSWORD = "correct horse battery staple"


class CustomerFactory(factory.django.DjangoModelFactory[Customer]):
    class Meta:
        model = Customer

    name = factory.Sequence(lambda n: f"Customer {n}")
    billing_email = factory.Sequence(lambda n: f"billing{n}@customer.example")
    contact_name = "Casey Contact"
    payment_terms_days = 14


@cache
def password_hash() -> str:
    """One real Argon2 hash of PASSWORD, shared by every test user: hashing is slow on
    purpose, and four personas per test would spend most of the suite in it."""
    return make_password(PASSWORD)


class UserFactory(factory.django.DjangoModelFactory[User]):
    class Meta:
        model = User

    email = factory.Sequence(lambda n: f"user{n}@tranche.example")
    role = Role.STAFF
    password = factory.LazyFunction(password_hash)


def make_quote(
    *,
    actor: User,
    customer: Customer,
    total: str = "1000.00",
    currency: str = "USD",
    percentages: tuple[str, ...] = ("30", "30", "40"),
    title: str = "Garden office",
) -> Quote:
    return quote_create(
        actor=actor,
        customer_id=customer.pk,
        title=title,
        currency=currency,
        lines=[LineInput("Build", Decimal(1), Decimal(total))],
        schedule=[
            ScheduleInput(f"Step {n}", True, Decimal(p)) for n, p in enumerate(percentages, 1)
        ],
    )


def make_project(*, actor: User, customer: Customer, **quote_args: Any) -> Project:
    quote = make_quote(actor=actor, customer=customer, **quote_args)
    return quote_accept(actor=actor, quote_id=quote.pk)


def totp_code(key: bytes, *, steps_ahead: int = 0) -> str:
    """The code an authenticator app shows for `key` now (or `steps_ahead` 30-second
    steps later: a device accepts one step of drift, and each step only once)."""
    totp = TOTP(key, step=30, t0=0, digits=6)
    totp.time = time.time() + 30 * steps_ahead
    return f"{totp.token():06d}"


def enable_two_factor(user: User) -> tuple[TOTPDevice, list[str]]:
    """Set up two-factor for `user` as the enrolment page does; returns the device and
    the recovery codes. The code used is the current step's: sign in with the next."""
    device = enrolment_device(user=user)
    return two_factor_enable(user=user, code=totp_code(device.bin_key))
