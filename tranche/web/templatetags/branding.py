"""The business's name and logo in the page header: `{% business_brand as business %}`."""

from __future__ import annotations

import logging

from django import template
from django.conf import settings
from django.db import DatabaseError

from tranche.accounts.business import BusinessProfile, business_profile

register = template.Library()
logger = logging.getLogger(__name__)


@register.simple_tag
def business_brand() -> BusinessProfile | dict[str, str]:
    """The profile; on a page rendered because the database failed (the 500 page), the
    environment's name alone, so the error page itself still renders."""
    try:
        return business_profile()
    except DatabaseError:
        logger.warning("Business settings unreadable; the header shows the default name")
        return {"name": settings.BUSINESS_NAME, "logo_url": ""}
