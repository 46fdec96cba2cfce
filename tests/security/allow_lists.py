"""What a customer may see, field by field (DESIGN.md rule 15): the allow-lists the
customer's JSON is checked against, by tests/security/test_customer_shapes.py (exact
shapes and values of the invoice reads) and tests/security/test_customer_views.py (every
route a customer can call, recursively).

A SHAPE is a dict of the keys allowed at one level: None for a value, a dict for a
nested object, a one-item list for the shape of every item of a list."""

from __future__ import annotations

from typing import Any

CUSTOMER_INVOICE = {
    "id",
    "number",
    "status",
    "invoice_type",
    "project_id",
    "milestone_id",
    "currency",
    "amount",
    # Tax is printed on the customer's own document, so the API says it too.
    "contract_amount",
    "net_amount",
    "tax_amount",
    "price_mode",
    "tax_treatment",
    "tax_note",
    "seller_tax_id",
    "buyer_tax_id",
    "tax_lines",
    "gross_amount",
    "retainage_amount",
    "amount_paid",
    "amount_credited",
    "amount_due",
    "credit_owed",
    "description",
    "issue_date",
    "due_date",
    "customer_name",
    "customer_email",
    "payment_link",
    "sent_at",
    "paid_at",
    "cancelled_at",
}
CUSTOMER_INVOICE_DETAIL = CUSTOMER_INVOICE | {"payments", "events"}
CUSTOMER_PAYMENT = {"id", "amount", "currency", "method", "received_on"}
CUSTOMER_EVENT = {"kind", "created_at", "number", "amount", "method", "status"}
CUSTOMER_SUMMARY = {
    "currency",
    "contract_total",
    "invoiced_amount",
    "paid_amount",
    "outstanding_amount",
    "credit_owed_amount",
}
CUSTOMER_TOTALS = {
    "currency",
    "outstanding_amount",
    "overdue_amount",
    "paid_amount",
    "credit_owed_amount",
}
CUSTOMER_MILESTONE = {
    "id",
    "project_id",
    "title",
    "position",
    "status",
    "is_billable",
    "billing_percentage",
    "bill_on_acceptance",
    "amount",
    "planned_date",
    "actual_date",
    "completed_at",
    "invoice_id",
}
CUSTOMER_PROJECT = {
    "id",
    "name",
    "customer_id",
    "customer_name",
    "currency",
    "contract_total",
    "waiting_for_deposit",
    "retainage_percentage",
    "created_at",
    "milestones",
}
CUSTOMER_TAX_LINE = {"name", "percentage", "rate_percentage", "net", "tax", "gross"}
CUSTOMER_CONTRACT_LINE = {
    "description",
    "quantity",
    "unit_price",
    "line_total",
    "tax_rate_id",
    "tax_name",
    "tax_percentage",
}
CUSTOMER_CHANGE_ORDER = {
    "id",
    "project_id",
    "reference",
    "status",
    "title",
    "summary",
    "lines",
    "schedule",
    "contract_total",
    "sent_at",
    "approved_at",
    # The name she typed when approving, and whether staff approved for her: hers.
    "approved_name",
    "on_behalf",
    "declined_at",
    "decline_reason",  # her own words
    "contract_version",
}
CUSTOMER_SCHEDULE_ROW = {"milestone_id", "title", "is_billable", "billing_percentage", "remove"}
CUSTOMER_BASIS = {"tax_name", "tax_percentage", "amount"}
CUSTOMER_PREVIEW_MILESTONE = {
    "milestone_id",
    "title",
    "is_billable",
    "invoiced",
    "removed",
    "before",
    "after",
    "after_bases",
}
CUSTOMER_CREDIT_NOTE = {
    "id",
    "number",
    "kind",
    "invoice_id",
    "invoice_number",
    "project_id",
    "currency",
    "amount",
    "net_amount",
    "tax_amount",
    "issue_date",
    "reason",  # what the credit note itself says (cancelling writes its own, not hers)
    "lines",
}
CUSTOMER_CREDIT_NOTE_LINE = {
    "name",
    "rate_percentage",
    "percentage",
    "net_amount",
    "tax_amount",
    "gross_amount",
}
CUSTOMER_QUOTE = {
    "id",
    "customer_id",
    "project_id",
    "title",
    "currency",
    "status",
    "price_mode",
    "net",
    "tax",
    "gross",
    "total",
    "lines",
    "schedule",
    "created_at",
    "accepted_at",
    "tax_lines",
}
CUSTOMER_QUOTE_LINE = CUSTOMER_CONTRACT_LINE | {"position"}
CUSTOMER_QUOTE_SCHEDULE = {
    "position",
    "title",
    "is_billable",
    "billing_percentage",
    "bill_on_acceptance",
}


def leaves(names: set[str], **nested: Any) -> dict[str, Any]:
    """A shape: `names` as plain values, `nested` as their own shapes."""
    assert set(nested) <= names, set(nested) - names
    return {name: nested.get(name) for name in names}


INVOICE = leaves(CUSTOMER_INVOICE, tax_lines=[leaves(CUSTOMER_TAX_LINE)])
INVOICE_DETAIL = leaves(
    CUSTOMER_INVOICE_DETAIL,
    tax_lines=[leaves(CUSTOMER_TAX_LINE)],
    payments=[leaves(CUSTOMER_PAYMENT)],
    events=[leaves(CUSTOMER_EVENT)],
)
PROJECT = leaves(CUSTOMER_PROJECT, milestones=[leaves(CUSTOMER_MILESTONE)])
CHANGE_ORDER = leaves(
    CUSTOMER_CHANGE_ORDER,
    lines=[leaves(CUSTOMER_CONTRACT_LINE)],
    schedule=[leaves(CUSTOMER_SCHEDULE_ROW)],
)
CREDIT_NOTE = leaves(CUSTOMER_CREDIT_NOTE, lines=[leaves(CUSTOMER_CREDIT_NOTE_LINE)])
QUOTE = leaves(
    CUSTOMER_QUOTE,
    tax_lines=[leaves(CUSTOMER_TAX_LINE)],
    lines=[leaves(CUSTOMER_QUOTE_LINE)],
    schedule=[leaves(CUSTOMER_QUOTE_SCHEDULE)],
)
BASES = [leaves(CUSTOMER_BASIS)]

# Every JSON route a customer can call, with its shape. A customer route missing here
# fails tests/security/test_customer_views.py.
CUSTOMER_JSON_SHAPES: dict[str, dict[str, Any]] = {
    "/api/health": {"status": None},
    "/api/projects": {"items": [PROJECT], "count": None},
    "/api/projects/<project_id>": PROJECT,
    "/api/projects/<project_id>/milestones": {"items": [leaves(CUSTOMER_MILESTONE)]},
    "/api/projects/<project_id>/invoices": {
        "items": [INVOICE],
        "summary": leaves(CUSTOMER_SUMMARY),
    },
    "/api/projects/<project_id>/invoices/<invoice_id>": INVOICE_DETAIL,
    "/api/invoices": {
        "items": [INVOICE],
        "next_cursor": None,
        "totals": [leaves(CUSTOMER_TOTALS)],
    },
    "/api/projects/<project_id>/change-orders": {"items": [CHANGE_ORDER]},
    "/api/change-orders/<change_order_id>": CHANGE_ORDER,
    "/api/change-orders/<change_order_id>/preview": {
        "currency": None,
        "contract_before": None,
        "contract_after": None,
        "bases_before": BASES,
        "bases_after": BASES,
        "shortfall": BASES,
        "milestones": [leaves(CUSTOMER_PREVIEW_MILESTONE, after_bases=BASES)],
        "problems": [{"code": None, "detail": None}],
    },
    "/api/credit-notes": {"items": [CREDIT_NOTE], "next_cursor": None},
    "/api/credit-notes/<credit_note_id>": CREDIT_NOTE,
    "/api/quotes": {"items": [QUOTE], "count": None},
    "/api/quotes/<quote_id>": QUOTE,
}


def not_allowed(body: Any, shape: Any, at: str = "") -> list[str]:
    """The paths in `body` its shape does not allow ("items[].milestones[].note")."""
    if isinstance(body, list):
        if not isinstance(shape, list):
            return [f"{at} (a list)"] if body else []
        return sorted({p for item in body for p in not_allowed(item, shape[0], f"{at}[]")})
    if isinstance(body, dict):
        if not isinstance(shape, dict):
            return [f"{at} (an object)"]
        found = []
        for key, value in body.items():
            path = f"{at}.{key}" if at else key
            if key not in shape:
                found.append(path)
            elif shape[key] is not None or isinstance(value, dict | list):
                found += not_allowed(value, shape[key], path)
        return found
    return []
