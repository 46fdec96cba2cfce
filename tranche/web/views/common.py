"""What every page view shares: the signed-in person, running one service with its
outcome announced, going back where the person came from, and paging a list."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.core.paginator import Page, Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from tranche.accounts.models import User
from tranche.core.errors import DomainError

PER_PAGE = 25


def user_of(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


def act(request: HttpRequest, action: Callable[[], Any], success: str) -> bool:
    """Run one service call and announce its outcome in the page's live region, with the
    same sentence the API gives for a refusal. True when it succeeded."""
    try:
        action()
    except DomainError as exc:
        messages.error(request, exc.detail)
        return False
    messages.success(request, success)
    return True


def safe_next(request: HttpRequest, fallback: str) -> str:
    """The `next` the form posted, if it is a path on this site; otherwise `fallback`."""
    target = request.POST.get("next", "") or request.GET.get("next", "")
    return target if target.startswith("/") and not target.startswith("//") else fallback


def back(request: HttpRequest, fallback: str) -> HttpResponse:
    return redirect(safe_next(request, fallback))


def page_of(
    request: HttpRequest, items: Any, per_page: int = PER_PAGE, *, count: int | None = None
) -> Page[Any]:
    """One page of `items` (a queryset: only that page's rows are read). `count`: how many
    there are, when the caller knows it without a COUNT over every row."""
    paginator = Paginator(items, per_page)
    if count is not None:
        paginator.count = count  # a cached_property: this stands in for the COUNT(*)
    return paginator.get_page(request.GET.get("page"))


def search_of(request: HttpRequest) -> str:
    return request.GET.get("q", "").strip()[:200]
