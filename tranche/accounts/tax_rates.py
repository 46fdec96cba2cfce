"""Tax rates an admin defines ("VAT 20 %", "Exempt 0 %") and the quote editor offers.

Quote lines keep a copy of the rate's name and percentage, so editing or retiring a rate
changes no quote, project or invoice already made: an edit applies to lines chosen from
then on, and a retired rate is simply no longer offered."""

from __future__ import annotations

import logging
from decimal import Decimal, InvalidOperation

from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet

from tranche.accounts.access import require_admin, require_staff
from tranche.accounts.models import TaxRate, User
from tranche.core.db import lock_one, valid_id
from tranche.core.errors import Conflict, Invalid, NotFound
from tranche.core.money import HUNDRED, ZERO

logger = logging.getLogger(__name__)

NAME_MAX_LENGTH = 100


def tax_rate_list(*, user: User, active_only: bool = False) -> QuerySet[TaxRate]:
    """Every rate (staff see them to quote with), lowest percentage first."""
    require_staff(user)
    rates = TaxRate.objects.all()
    return rates.filter(is_active=True) if active_only else rates


def offered_rates() -> QuerySet[TaxRate]:
    """The rates a new quote line may choose (for pages that already checked the user)."""
    return TaxRate.objects.filter(is_active=True)


def access_tax_rate(user: User, rate_id: int) -> TaxRate:
    require_staff(user)
    rate = TaxRate.objects.filter(pk=rate_id).first() if valid_id(rate_id) else None
    if rate is None:
        raise NotFound(f"Tax rate {rate_id} does not exist.", code="tax_rate_not_found")
    return rate


def _name(name: str) -> str:
    name = " ".join(name.split())
    if not name:
        raise Invalid("A tax rate needs a name, e.g. “VAT 20 %”.", code="name_required")
    if len(name) > NAME_MAX_LENGTH:
        raise Invalid(
            f"A tax rate's name must be at most {NAME_MAX_LENGTH} characters.",
            code="name_too_long",
        )
    return name


def parse_percentage(value: Decimal | str) -> Decimal:
    """A percentage from 0 to 100 with at most two decimal places ("20", "5.5", "7.25")."""
    try:
        percentage = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except InvalidOperation:
        raise Invalid(
            f"The percentage must be a number from 0 to 100, not {str(value)!r}.",
            code="percentage_invalid",
        ) from None
    if not percentage.is_finite() or not ZERO <= percentage <= HUNDRED:
        raise Invalid(
            f"The percentage must be from 0 to 100, not {value}.", code="percentage_invalid"
        )
    if percentage != percentage.quantize(Decimal("0.01")):
        raise Invalid(
            f"The percentage may have at most two decimal places, not {value}.",
            code="percentage_invalid",
        )
    return percentage.quantize(Decimal("0.01"))


def _name_taken(name: str, *, exclude: int | None = None) -> bool:
    rates = TaxRate.objects.filter(name__iexact=name)
    if exclude is not None:
        rates = rates.exclude(pk=exclude)
    return rates.exists()


def _taken(name: str) -> Conflict:
    return Conflict(
        f"A tax rate named “{name}” already exists; give this one another name.",
        code="tax_rate_name_taken",
    )


def tax_rate_create(*, actor: User, name: str, percentage: Decimal | str) -> TaxRate:
    require_admin(actor)
    name = _name(name)
    value = parse_percentage(percentage)
    if _name_taken(name):
        raise _taken(name)
    try:
        with transaction.atomic():
            rate = TaxRate.objects.create(name=name, percentage=value)
    except IntegrityError:  # the same name created at the same moment
        raise _taken(name) from None
    logger.info("Tax rate %s (%s %%) created by %s", name, value, actor.email)
    return rate


def tax_rate_update(
    *, actor: User, rate_id: int, name: str | None = None, percentage: Decimal | str | None = None
) -> TaxRate:
    """Rename a rate or change its percentage. Lines already made keep their copy."""
    require_admin(actor)
    new_name = _name(name) if name is not None else None
    value = parse_percentage(percentage) if percentage is not None else None
    try:
        with transaction.atomic():
            rate = lock_one(TaxRate, rate_id, not_found=f"Tax rate {rate_id} does not exist.")
            if new_name is not None:
                if _name_taken(new_name, exclude=rate.pk):
                    raise _taken(new_name)
                rate.name = new_name
            if value is not None:
                rate.percentage = value
            rate.save(update_fields=["name", "percentage"])
    except IntegrityError:
        raise _taken(new_name or "") from None
    return rate


def tax_rate_set_active(*, actor: User, rate_id: int, active: bool) -> TaxRate:
    """Retire a rate (no longer offered on new quote lines) or offer it again. Doing it
    twice is harmless: the rate is then simply as asked."""
    require_admin(actor)
    with transaction.atomic():
        rate = lock_one(TaxRate, rate_id, not_found=f"Tax rate {rate_id} does not exist.")
        if rate.is_active != active:
            rate.is_active = active
            rate.save(update_fields=["is_active"])
    return rate


def rates_for_choice(chosen: set[int]) -> list[TaxRate]:
    """What a quote line's rate select lists: the rates offered, plus any rate already
    chosen that has been retired since (shown so the person sees it and picks another)."""
    return list(TaxRate.objects.filter(Q(is_active=True) | Q(pk__in=chosen)))
