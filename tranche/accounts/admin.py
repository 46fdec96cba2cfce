"""Customers in the operations admin, read-only."""

from __future__ import annotations

from django.contrib import admin

from tranche.accounts.models import Customer
from tranche.core.admin import ReadOnlyAdmin, operations_site


@admin.register(Customer, site=operations_site)
class CustomerAdmin(ReadOnlyAdmin[Customer]):
    list_display = ["name", "billing_email", "contact_name", "payment_terms_days", "created_at"]
    search_fields = ["name", "billing_email"]
