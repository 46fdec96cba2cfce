"""The raw-SQL ceiling of "complete a milestone": the writes milestone_complete makes
(billing/services/drafts.py: lock the project, mark the milestone completed, insert its
draft invoice, its tax line and its "created" audit event, in one transaction), issued
with psycopg and nothing else: no Django, no authentication, no reads beyond the lock.

Two ways: `complete_direct` from the load process's own connections, and `app`, a WSGI
function served by gunicorn with the server's settings (2 sync workers), whose figure is
comparable with the floor's (both pay for HTTP and the server).

    gunicorn bench.ceiling:app          (BENCH_DSN names the database)
    PATCH /complete/<project_id>/<milestone_id>
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable
from typing import Any

import psycopg

# The invoice's columns the writes fill; any other NOT NULL column gets its type's zero
# (see _filler), so the statement follows the table when a migration adds a column.
LOCK = (
    "SELECT id, customer_id, currency, contract_total, origin_quote_id "
    "FROM projects_project WHERE id = %s FOR UPDATE"
)
COMPLETE = """
UPDATE projects_milestone
   SET status = 'completed', completed_at = now(), completed_by_id = %s,
       actual_date = current_date, updated_at = now()
 WHERE id = %s AND project_id = %s AND status = 'pending'
RETURNING title, billing_percentage
"""
CUSTOMER = "SELECT name, billing_email, payment_terms_days FROM accounts_customer WHERE id = %s"
TAX_LINE = """
INSERT INTO billing_invoicetaxline
    (invoice_id, position, name, rate_percentage, percentage, net_amount, tax_amount, gross_amount)
VALUES (%s, 1, 'VAT', 20, 20, %s, %s, %s)
"""
EVENT = """
INSERT INTO billing_invoiceevent (invoice_id, actor_id, kind, details, created_at)
VALUES (%s, %s, 'created', %s, now())
"""


def _filler(connection: psycopg.Connection[Any]) -> dict[str, str]:
    """A zero value (SQL) for each NOT NULL column of billing_invoice without a default."""
    rows = connection.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_name = 'billing_invoice' AND is_nullable = 'NO' AND column_default IS NULL "
        "AND is_identity = 'NO'"
    ).fetchall()
    zero = {"boolean": "false", "numeric": "0", "integer": "0", "bigint": "0", "smallint": "0"}
    return {name: zero.get(kind, "''") for name, kind in rows}


class Completer:
    """One connection and the invoice INSERT built for the table as it is."""

    def __init__(self, dsn: str, actor_id: int) -> None:
        # autocommit: each transaction() block is then its own BEGIN … COMMIT (not a
        # savepoint of one transaction that never ends).
        self.connection = psycopg.connect(dsn, autocommit=True)
        self.actor_id = actor_id
        given = {
            "project_id": "%(project_id)s",
            "quote_id": "%(quote_id)s",
            "milestone_id": "%(milestone_id)s",
            "customer_id": "%(customer_id)s",
            "status": "'draft'",
            "invoice_type": "'milestone'",
            "currency": "%(currency)s",
            "amount": "%(gross)s",
            "contract_amount": "%(net)s",
            "net_amount": "%(net)s",
            "tax_amount": "%(tax)s",
            "price_mode": "'exclusive'",
            "tax_treatment": "'standard'",
            "description": "%(description)s",
            "issue_date": "current_date",
            "due_date": "current_date + %(terms)s::int",
            "customer_name": "%(customer_name)s",
            "customer_email": "%(customer_email)s",
            "created_by_id": "%(actor_id)s",
            "created_at": "now()",
            "updated_at": "now()",
        }
        columns = {**_filler(self.connection), **given}
        self.insert = (
            f"INSERT INTO billing_invoice ({', '.join(columns)}) "  # noqa: S608 - fixed names
            f"VALUES ({', '.join(columns.values())}) RETURNING id"
        )

    def complete(self, project_id: int, milestone_id: int) -> int:
        with self.connection.transaction():
            project = self.connection.execute(LOCK, [project_id]).fetchone()
            if project is None:
                raise LookupError(project_id)
            _pk, customer_id, currency, contract_total, quote_id = project
            done = self.connection.execute(
                COMPLETE, [self.actor_id, milestone_id, project_id]
            ).fetchone()
            if done is None:
                raise LookupError(milestone_id)
            title, percentage = done
            customer = self.connection.execute(CUSTOMER, [customer_id]).fetchone()
            assert customer is not None
            name, email, terms = customer
            net = round(contract_total * percentage / 100, 2)
            tax = round(net * 20 / 100, 2)
            inserted = self.connection.execute(
                self.insert,
                {
                    "project_id": project_id,
                    "quote_id": quote_id,
                    "milestone_id": milestone_id,
                    "customer_id": customer_id,
                    "currency": currency,
                    "gross": net + tax,
                    "net": net,
                    "tax": tax,
                    "description": f"Payment for completed milestone: {title}",
                    "terms": terms,
                    "customer_name": name,
                    "customer_email": email,
                    "actor_id": self.actor_id,
                },
            ).fetchone()
            assert inserted is not None
            invoice_id: int = inserted[0]
            self.connection.execute(TAX_LINE, [invoice_id, net, tax, net + tax])
            details = json.dumps({"milestone_id": milestone_id, "amount": str(net + tax)})
            self.connection.execute(EVENT, [invoice_id, self.actor_id, details])
        return invoice_id


def direct(
    dsn: str, actor_id: int
) -> tuple[Callable[[], Completer], Callable[[Completer, Any], None]]:
    """(setup, work) for load.run_callable_load: each client process connects once."""

    def setup() -> Completer:
        return Completer(dsn, actor_id)

    def work(completer: Completer, item: tuple[int, int]) -> None:
        completer.complete(*item)

    return setup, work


_completer: Completer | None = None
_PATH = re.compile(r"^/complete/(\d+)/(\d+)$")


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """The served ceiling: one connection per worker process, kept for its life."""
    global _completer
    match = _PATH.match(environ.get("PATH_INFO", ""))
    if match is None or environ.get("REQUEST_METHOD") != "PATCH":
        start_response("404 Not Found", [("Content-Type", "application/json")])
        return [b'{"detail": "no such route"}']
    if _completer is None:
        _completer = Completer(os.environ["BENCH_DSN"], int(os.environ["BENCH_ACTOR_ID"]))
    try:
        invoice_id = _completer.complete(int(match[1]), int(match[2]))
    except LookupError:
        start_response("404 Not Found", [("Content-Type", "application/json")])
        return [b'{"detail": "no such pending milestone"}']
    body = json.dumps({"invoice_id": invoice_id}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]
