from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import models


def money_field(**kwargs: Any) -> models.DecimalField[Decimal, Decimal]:
    """Every money column: 15 digits with 3 decimals covers KWD and totals up to
    999,999,999,999.999; amounts are rounded to their currency's precision before saving."""
    return models.DecimalField(max_digits=15, decimal_places=3, **kwargs)
