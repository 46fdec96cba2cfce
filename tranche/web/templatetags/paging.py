"""The one pager under every list: `{% pages page "projects" %}`. Its links keep the
list's other query parameters (search, filters, sort), so paging never drops a filter."""

from __future__ import annotations

from typing import Any

from django import template
from django.core.paginator import Page

register = template.Library()


@register.inclusion_tag("web/_pages.html", takes_context=True)
def pages(
    context: dict[str, Any], page: Page[Any], noun: str, label: str = "Pages", anchor: str = ""
) -> dict[str, Any]:
    query = context["request"].GET.copy()
    query.pop("page", None)
    kept = query.urlencode()
    prefix = f"?{kept}&page=" if kept else "?page="
    suffix = f"#{anchor}" if anchor else ""
    return {
        "page": page,
        "noun": noun,
        "label": label,
        "previous": f"{prefix}{page.previous_page_number()}{suffix}" if page.has_previous() else "",
        "next": f"{prefix}{page.next_page_number()}{suffix}" if page.has_next() else "",
    }
