"""One date format everywhere (babel, the site's language): `{{ invoice.due_date|day }}`
→ "Nov 28, 2026"; `{{ event.created_at|moment }}` → "Nov 28, 2026, 8:54 PM" in the site's
time zone. A missing value prints "—"."""

from __future__ import annotations

from datetime import date, datetime

from babel.dates import format_date, format_datetime
from django import template
from django.utils import timezone

register = template.Library()

LOCALE = "en_US"


def day_text(value: date | datetime | None) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, datetime):
        value = timezone.localtime(value).date() if timezone.is_aware(value) else value.date()
    return format_date(value, "medium", locale=LOCALE)


def moment_text(value: datetime | None) -> str:
    if value is None or value == "":
        return "—"
    local = timezone.localtime(value) if timezone.is_aware(value) else value
    return format_datetime(local, "MMM d, y, h:mm a", locale=LOCALE)


@register.filter
def day(value: date | datetime | None) -> str:
    return day_text(value)


@register.filter
def moment(value: datetime | None) -> str:
    return moment_text(value)
