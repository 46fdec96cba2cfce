"""Answers for addresses no page serves."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse


def api_not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    return JsonResponse(
        {"detail": "No API endpoint at this address.", "code": "not_found"}, status=404
    )
