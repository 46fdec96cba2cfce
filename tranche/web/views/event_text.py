"""The values inside an audit event's details, written for a person: both the invoice's
timeline and the project's activity tell events with these (their sentences differ: one
speaks of 'this invoice', the other names it and who acted)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from tranche.billing.models import InvoiceStatus, PaymentMethod
from tranche.core.money import Money


def money_text(value: object, currency: str) -> str:
    """An amount stored in the details ("300.00") as money; anything unreadable as is."""
    try:
        return str(Money(Decimal(str(value)), currency))
    except (InvalidOperation, ValueError, TypeError):
        return str(value)


def method_text(code: object) -> str:
    """'bank_transfer' → 'bank transfer'; an unknown code as it is."""
    labels = dict(PaymentMethod.choices)
    return str(labels.get(str(code), code)).lower()


def status_text(code: object) -> str:
    labels = dict(InvoiceStatus.choices)
    return str(labels.get(str(code), code)).lower()


def changes_text(details: dict[str, Any], currency: str) -> str:
    """What a draft edit changed ("amount $300.00 → $250.00, description changed")."""
    parts = []
    if "amount" in details:
        old, _, new = str(details["amount"]).partition(" -> ")
        parts.append(f"amount {money_text(old, currency)} → {money_text(new, currency)}")
    if "description" in details:
        parts.append("description changed")
    if "due_date" in details:
        old, _, new = str(details["due_date"]).partition(" -> ")
        parts.append(f"due date {old} → {new}")
    return ", ".join(parts) or "no change"
