"""The accounting export over HTTP (admins and staff): CSV or JSON, streamed."""

from __future__ import annotations

from datetime import date

from django.http import HttpRequest, StreamingHttpResponse
from ninja import Query, Router, Schema

from tranche.accounts.access import require_staff
from tranche.accounts.auth import actor
from tranche.billing.exports import ExportFormat, export_period, export_response

router = Router(tags=["exports"])


class AccountingExportQuery(Schema):
    date_from: date
    date_to: date
    format: ExportFormat = ExportFormat.CSV


EXPORT_RESPONSE = {
    "responses": {
        200: {
            "description": "One row per document per tax rate; docs/accounting-export.md "
            "describes every column",
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                "application/json": {"schema": {"type": "object"}},
            },
        }
    }
}


@router.get(
    "/accounting",
    response={200: None},
    openapi_extra=EXPORT_RESPONSE,
    description="Sent invoices (by issue date) and payments and refunds (by the day "
    "received) in the period, both days included, one row per document per tax rate. "
    "Admins and staff.",
)
def accounting_export(
    request: HttpRequest, query: Query[AccountingExportQuery]
) -> StreamingHttpResponse:
    user = actor(request)
    require_staff(user)
    period = export_period(query.date_from, query.date_to)
    return export_response(user=user, period=period, export_format=query.format)
