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
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

from tranche.core.money import MAX_AMOUNT


class Output(BaseModel):
    """A response shape filled with values the code has shaped already (`InvoiceOut.of`):
    plain pydantic. ninja's Schema wraps every validation in a getter that reads each
    field through Django's template-variable rules; on a page of 50 invoices that was a
    third of the request, and the response was validated twice over."""

    model_config = ConfigDict(from_attributes=True)


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


# JSON's true and false only: in lax mode pydantic reads 0, 1, "yes" and "off" as booleans
# too, which the document (`"type": "boolean"`) does not promise.
Flag = Annotated[bool, Field(strict=True)]

PlainDecimal = Annotated[Decimal, BeforeValidator(_plain_decimal)]
PlainInt = Annotated[int, BeforeValidator(_plain_integer)]


def _decimal_json(number: dict[str, Any], pattern: str) -> WithJsonSchema:
    """What the API documents for a decimal: a JSON number within the bounds, in steps of
    the allowed precision, or the same written as text with ASCII digits (`pattern`)."""
    return WithJsonSchema(
        {"anyOf": [{"type": "number", **number}, {"type": "string", "pattern": pattern}]}
    )


# The bounds come before the plain-digits check: pydantic documents a bound it can attach
# to the number itself as JSON Schema (`exclusiveMinimum`); a bound on the checked value
# would leak into the document as its own parameter name (`gt`), which no client reads.
Id = Annotated[int, Field(gt=0), BeforeValidator(_plain_integer)]
# The currency's own precision is checked by the service, which knows the currency.
MoneyIn = Annotated[
    Decimal,
    Field(ge=0, le=MAX_AMOUNT, decimal_places=3, allow_inf_nan=False),
    BeforeValidator(_plain_decimal),
    _decimal_json(
        {"minimum": 0, "maximum": float(MAX_AMOUNT), "multipleOf": 0.001},
        r"^[0-9]{1,11}(\.[0-9]{1,3})?$",
    ),
]
Quantity = Annotated[
    Decimal,
    Field(gt=0, le=Decimal("999999999"), decimal_places=3, allow_inf_nan=False),
    BeforeValidator(_plain_decimal),
    _decimal_json(
        {"exclusiveMinimum": 0, "maximum": 999999999, "multipleOf": 0.001},
        # 0.001 to 999999999: a non-zero whole part of up to eight digits, nine digits
        # with no fraction, or a zero whole part with a non-zero fraction.
        r"^([1-9][0-9]{0,7}(\.[0-9]{1,3})?|[1-9][0-9]{8}(\.0{1,3})?"
        r"|0\.([1-9][0-9]{0,2}|0[1-9][0-9]?|00[1-9]))$",
    ),
]
Percentage = Annotated[
    Decimal,
    Field(ge=0, le=100, max_digits=5, decimal_places=2, allow_inf_nan=False),
    BeforeValidator(_plain_decimal),
    _decimal_json(
        {"minimum": 0, "maximum": 100, "multipleOf": 0.01},
        r"^(100(\.0{1,2})?|[0-9]{1,2}(\.[0-9]{1,2})?)$",
    ),
]
# Retainage: a share withheld, so below 100.
RetainagePercentage = Annotated[
    Decimal,
    Field(ge=0, lt=100, max_digits=5, decimal_places=2, allow_inf_nan=False),
    BeforeValidator(_plain_decimal),
    _decimal_json(
        {"minimum": 0, "exclusiveMaximum": 100, "multipleOf": 0.01},
        r"^[0-9]{1,2}(\.[0-9]{1,2})?$",
    ),
]
Position = Annotated[int, Field(ge=1, le=10_000), BeforeValidator(_plain_integer)]
Days = Annotated[int, Field(ge=0, le=365), BeforeValidator(_plain_integer)]


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


# The document says "from the year 2000" as a pattern (JSON Schema has no bounds for
# dates); an upper bound relative to today cannot be written in a fixed document, so it
# is in the field's description.
_FROM_2000 = r"^[2-9][0-9]{3}-[0-9]{2}-[0-9]{2}$"


def _date_json(description: str | None = None) -> WithJsonSchema:
    schema: dict[str, Any] = {"type": "string", "format": "date", "pattern": _FROM_2000}
    if description:
        schema["description"] = description
    return WithJsonSchema(schema)


# An invoice is due within a few years of being issued.
DueDate = Annotated[
    date,
    _date_between(years_ahead=5),
    _date_json("From 2000-01-01, and within 5 years from today."),
]
PlannedDate = Annotated[
    date,
    _date_between(years_ahead=20),
    _date_json("From 2000-01-01, and within 20 years from today."),
]
# "Not in the future" is the service's check: it knows the `now` of the operation.
ReceivedOn = Annotated[date, _date_between(years_ahead=None), _date_json("From 2000-01-01.")]


class PageParams(Schema):
    limit: PlainInt = Field(50, ge=1, le=200)
    offset: PlainInt = Field(0, ge=0, le=10_000_000)


# --- errors -------------------------------------------------------------------------------


class FieldErrorOut(Schema):
    model_config = ConfigDict(extra="forbid")

    field: str
    message: str


class ErrorOut(Schema):
    """Every refusal (DESIGN.md rule 10): a sentence a person understands and a stable
    machine code; a refused input (`validation_error`) also names each field and what is
    wrong with it. Nothing else: the documented shape is the whole shape."""

    model_config = ConfigDict(extra="forbid")

    detail: str
    code: str
    errors: list[FieldErrorOut] | None = None
