"""Building blocks for API schemas: strict input, money and percentages as Decimal."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from ninja import Schema
from pydantic import ConfigDict, Field

from tranche.core.money import MAX_AMOUNT


class Input(Schema):
    """Request bodies refuse unknown fields: a typo must not be silently ignored."""

    model_config = ConfigDict(extra="forbid")


Id = Annotated[int, Field(gt=0)]
# The currency's own precision is checked by the service, which knows the currency.
MoneyIn = Annotated[Decimal, Field(ge=0, le=MAX_AMOUNT, decimal_places=3, allow_inf_nan=False)]
Quantity = Annotated[
    Decimal, Field(gt=0, le=Decimal("999999999"), decimal_places=3, allow_inf_nan=False)
]
Percentage = Annotated[
    Decimal, Field(ge=0, le=100, max_digits=5, decimal_places=2, allow_inf_nan=False)
]
Text200 = Annotated[str, Field(min_length=1, max_length=200)]
Text500 = Annotated[str, Field(min_length=1, max_length=500)]


class PageParams(Schema):
    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0, le=10_000_000)
