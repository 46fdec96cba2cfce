from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, cast

from django.http import HttpRequest
from ninja.parser import Parser


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number this API accepts.")


class DecimalJSONParser(Parser):
    """Parse JSON numbers with a fraction as Decimal, never float: 0.1 stays 0.1.
    NaN and Infinity are refused as malformed JSON."""

    def parse_body(self, request: HttpRequest) -> dict[str, Any]:
        return cast(
            dict[str, Any],
            json.loads(request.body, parse_float=Decimal, parse_constant=_refuse_constant),
        )
