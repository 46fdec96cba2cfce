"""Building blocks for API schemas: strict input, money and percentages as Decimal.

Every input field type here is stricter than what Python itself accepts: `Decimal()` and
`int()` read Arabic-Indic digits and `1_000`, a title of zero-width characters looks
empty to a person, and a far-future date breaks date arithmetic later (a due date of
9999-12-31 overflows the reminder schedule). Refusing these at the edge keeps the data
every later step works on ordinary."""

from __future__ import annotations

import re
import unicodedata
from datetime import date, timedelta
from decimal import Decimal
from typing import Annotated, Any

from django.utils import timezone
from ninja import Schema
from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field

from tranche.core.money import MAX_AMOUNT


class Input(Schema):
    """Request bodies refuse unknown fields: a typo must not be silently ignored."""

    model_config = ConfigDict(extra="forbid")


# --- numbers ------------------------------------------------------------------------------

_DECIMAL_TEXT = re.compile(r"-?[0-9]+(\.[0-9]+)?", re.ASCII)
_INTEGER_TEXT = re.compile(r"-?[0-9]+", re.ASCII)


def _plain_decimal(value: Any) -> Any:
    """A number given as text must be written with ASCII digits, an optional minus sign
    and a dot: no other scripts' digits, no `_` separators, no exponent, no spaces."""
    if isinstance(value, bool):
        raise ValueError("must be a number, not true or false")
    if isinstance(value, str) and not _DECIMAL_TEXT.fullmatch(value):
        raise ValueError("must be a number written with the digits 0-9 and an optional dot")
    return value


def _plain_integer(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("must be a whole number, not true or false")
    if isinstance(value, str) and not _INTEGER_TEXT.fullmatch(value):
        raise ValueError("must be a whole number written with the digits 0-9")
    if isinstance(value, Decimal) and value != value.to_integral_value():
        raise ValueError("must be a whole number")
    return value


PlainDecimal = Annotated[Decimal, BeforeValidator(_plain_decimal)]
PlainInt = Annotated[int, BeforeValidator(_plain_integer)]

Id = Annotated[PlainInt, Field(gt=0)]
# The currency's own precision is checked by the service, which knows the currency.
MoneyIn = Annotated[PlainDecimal, Field(ge=0, le=MAX_AMOUNT, decimal_places=3, allow_inf_nan=False)]
Quantity = Annotated[
    PlainDecimal, Field(gt=0, le=Decimal("999999999"), decimal_places=3, allow_inf_nan=False)
]
Percentage = Annotated[
    PlainDecimal, Field(ge=0, le=100, max_digits=5, decimal_places=2, allow_inf_nan=False)
]
Position = Annotated[PlainInt, Field(ge=1, le=10_000)]
Days = Annotated[PlainInt, Field(ge=0, le=365)]


# --- text ---------------------------------------------------------------------------------

# Characters that draw nothing although Unicode does not class them as format characters.
_BLANK_LOOKING = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def _invisible(ch: str) -> bool:
    # Cf: zero-width space/joiners, word joiner, BOM…; Z*: spaces; Cc: control characters.
    return ch.isspace() or ch in _BLANK_LOOKING or unicodedata.category(ch)[0] in "CZ"


def _trim_invisible(value: str) -> str:
    """Drop what draws nothing from both ends, so that a title of only zero-width
    characters reaches the service as the empty text it looks like and is refused there
    with the same code as a blank one (`title_required`, `name_required`…)."""
    start, end = 0, len(value)
    while start < end and _invisible(value[start]):
        start += 1
    while end > start and _invisible(value[end - 1]):
        end -= 1
    return value[start:end]


Text200 = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_trim_invisible)]
Text500 = Annotated[str, Field(min_length=1, max_length=500), AfterValidator(_trim_invisible)]
# Optional free text: may be left empty, but what is given is trimmed the same way.
OptionalText200 = Annotated[str, Field(max_length=200), AfterValidator(_trim_invisible)]
OptionalText500 = Annotated[str, Field(max_length=500), AfterValidator(_trim_invisible)]


# --- dates --------------------------------------------------------------------------------

EARLIEST_DATE = date(2000, 1, 1)


def _date_between(*, years_ahead: int | None) -> AfterValidator:
    """Dates from 2000-01-01 up to `years_ahead` years from today (None: no upper bound)."""

    def check(value: date) -> date:
        today = timezone.localdate()
        if value < EARLIEST_DATE:
            raise ValueError(f"must be on or after {EARLIEST_DATE.isoformat()}")
        if years_ahead is not None and value > today + timedelta(days=366 * years_ahead):
            raise ValueError(f"must be within {years_ahead} years from today")
        return value

    return AfterValidator(check)


# An invoice is due within a few years of being issued.
DueDate = Annotated[date, _date_between(years_ahead=5)]
PlannedDate = Annotated[date, _date_between(years_ahead=20)]
# "Not in the future" is the service's check: it knows the `now` of the operation.
ReceivedOn = Annotated[date, _date_between(years_ahead=None)]


class PageParams(Schema):
    limit: PlainInt = Field(50, ge=1, le=200)
    offset: PlainInt = Field(0, ge=0, le=10_000_000)
