"""The financials totals kept up to date by the database (issue 11): `InvoiceTotals`
holds one row per customer, currency, status and sent-or-not, and triggers on
billing_invoice add every inserted, changed or deleted invoice's part to it in the
transaction that wrote the invoice, whatever wrote it (a service, a bulk update, raw
SQL, the benchmark's bulk inserts). The table is then filled from the invoices there are.

An invoice's part: 1, and `amount`, `amount_paid`, the amount due and the credit owed
(`selectors.AMOUNT_DUE` and `CREDIT_OWED`, row by row) in integer thousandths of the
currency unit, so that no float ever enters a sum (SQLite keeps decimals as floats).

Like migration 0011's guard: keep this after the last migration that alters
billing_invoice, or create the triggers again after it: on SQLite, Django alters a table
by rebuilding it, which drops its triggers (tests/billing/test_credit_notes.py checks
they are all there).

PostgreSQL: statement-level triggers over the statement's transition tables. The old
rows' parts are taken away and the new rows' added, all added up per key first: a row
whose key and figures did not change cancels out, so an update of anything else (a
payment link, a send claim, a reminder's timestamp) writes nothing and locks nothing,
and a bulk statement makes one upsert per key, not per row. (Matching old rows to new
ones instead would join two transition tables, which have no index: quadratic on a bulk
update, minutes for 20,000 rows.)

Concurrency. Two transactions changing invoices of one customer meet on that customer's
summary rows, and each keeps the rows it changed locked until it commits. Alone, those
row locks would deadlock two transactions that move invoices between two of a
customer's rows in opposite orders (a change order crediting a pending then a partly
paid invoice, while a payment moves another from pending to partly paid: each holds the
row the other wants; without the lock below, the deadlock test of
tests/billing/test_invoice_totals_summary.py fails with "deadlock detected"). So the
trigger first takes a transaction-scoped advisory lock per customer whose rows change,
in customer order: the second transaction waits for the first to commit, as it would
have for the summary row. What stays possible, as with any lock, is a cycle through a
lock taken after an invoice was written: a transaction that writes an invoice of
customer A and then waits for a row another transaction holds while that one waits to
write an invoice of A. The services take their row locks (customer, project, milestone,
invoice, number sequences) before they write, so none does that today; keep it so.
PostgreSQL would detect such a cycle and abort one of the two (error 40P01). A statement
changing the rows of more than MANY_CUSTOMERS customers locks the summary table instead
of one advisory lock each (a bulk load, not something a request does).

SQLite: row-level triggers (one writer at a time, nothing to order), an update only
when a column the totals read changed. Taking a row's part away is an UPDATE, never an
insert: a transactional test's flush deletes tables in any order (billing_invoicetotals
may already be empty when the invoices go)."""

from django.db import migrations, models

# What an invoice's part depends on: a change of anything else leaves the totals alone
# (SQLite's update trigger fires only for these).
COLUMNS = [
    "customer_id",
    "currency",
    "status",
    "number",
    "amount",
    "amount_paid",
    "amount_credited",
]

SUMS = ["count", "amount", "amount_paid", "amount_due", "credit_owed"]
KEY = ["customer_id", "currency", "status", "sent"]
TARGET = ", ".join(KEY + SUMS)
UPSERT = f"ON CONFLICT ({', '.join(KEY)}) DO UPDATE SET " + ", ".join(
    f"{c} = billing_invoicetotals.{c} + excluded.{c}" for c in SUMS
)


def _part(row: str, *, a: str, p: str, c: str, sign: str) -> list[str]:
    """The invoice `row`'s key and signed part, named like the table's columns (a, p,
    c: its amount, amount paid and amount credited in thousandths, as SQL)."""
    due = f"CASE WHEN {a} > {c} + {p} THEN {a} - {c} - {p} ELSE 0 END"
    credit = (
        f"CASE WHEN {row}.status = 'cancelled' AND {p} > 0 THEN {p} "
        f"WHEN {p} > {a} - {c} THEN {p} - {a} + {c} ELSE 0 END"
    )
    key = [f"{row}.customer_id", f"{row}.currency", f"{row}.status", f"({row}.number IS NOT NULL)"]
    return key + [f"{sign}({value})" for value in ("1", a, p, due, credit)]


def _select(part: list[str]) -> str:
    return ", ".join(f"{value} AS {name}" for value, name in zip(part, KEY + SUMS, strict=True))


# --- PostgreSQL -----------------------------------------------------------------------


def _pg_part(row: str, sign: str) -> list[str]:
    # numeric(15, 3) times 1000 is a whole number: the cast is exact.
    return _part(
        row,
        a=f"({row}.amount * 1000)::bigint",
        p=f"({row}.amount_paid * 1000)::bigint",
        c=f"({row}.amount_credited * 1000)::bigint",
        sign=sign,
    )


def _pg_deltas(parts: str) -> str:
    """`parts` (rows of key and part) added up per key. An update's rows come as the old
    row's part taken away and the new row's added: a row whose key and figures did not
    change adds nothing, so a key that nets to zero is left out (no write, no lock)."""
    sums = ", ".join(f"sum({c}) AS {c}" for c in SUMS)
    nonzero = " OR ".join(f"sum({c}) <> 0" for c in SUMS)
    key = ", ".join(KEY)
    return f"SELECT {key}, {sums} FROM ({parts}) AS part GROUP BY {key} HAVING {nonzero}"


def _pg_upsert(parts: str) -> str:
    """The deltas into the table, in key order."""
    return f"""INSERT INTO billing_invoicetotals ({TARGET})
            SELECT {TARGET} FROM ({_pg_deltas(parts)}) AS delta ORDER BY {", ".join(KEY)}
            {UPSERT};"""


# A statement touching more customers than this locks the summary table instead: one
# advisory lock each would fill PostgreSQL's lock table (64 x max_connections entries).
MANY_CUSTOMERS = 1000
CUSTOMER = "(customer_id % 2147483648)::integer"  # an advisory lock's key is an integer


def _pg_apply(parts: str) -> str:
    """Lock the customers whose summary rows change, in customer order (one transaction
    at a time changes a customer's rows: an advisory lock held to its end; the whole
    table for a bulk statement over many customers), then write the deltas."""
    return f"""SELECT array_agg(DISTINCT {CUSTOMER} ORDER BY {CUSTOMER}) INTO customers
            FROM ({_pg_deltas(parts)}) AS delta;
            IF customers IS NULL THEN
                RETURN NULL;
            ELSIF cardinality(customers) > {MANY_CUSTOMERS} THEN
                LOCK TABLE billing_invoicetotals IN SHARE ROW EXCLUSIVE MODE;
            ELSE
                PERFORM pg_advisory_xact_lock(hashtext('billing_invoicetotals'), customer)
                FROM unnest(customers) AS customer;
            END IF;
            {_pg_upsert(parts)}"""


NEW_PARTS = f"SELECT {_select(_pg_part('n', '+'))} FROM new_rows n"
OLD_PARTS = f"SELECT {_select(_pg_part('o', '-'))} FROM old_rows o"

PG_FORWARD = [
    f"""CREATE OR REPLACE FUNCTION billing_invoice_totals() RETURNS trigger AS $$
    DECLARE
        customers integer[];
    BEGIN
        IF TG_OP = 'INSERT' THEN
            {_pg_apply(NEW_PARTS)}
        ELSIF TG_OP = 'DELETE' THEN
            {_pg_apply(OLD_PARTS)}
        ELSE
            {_pg_apply(f"{OLD_PARTS} UNION ALL {NEW_PARTS}")}
        END IF;
        RETURN NULL;
    END;
    $$ LANGUAGE plpgsql;""",
    """CREATE TRIGGER billing_invoice_totals_insert
    AFTER INSERT ON billing_invoice REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION billing_invoice_totals();""",
    """CREATE TRIGGER billing_invoice_totals_update
    AFTER UPDATE ON billing_invoice REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION billing_invoice_totals();""",
    """CREATE TRIGGER billing_invoice_totals_delete
    AFTER DELETE ON billing_invoice REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION billing_invoice_totals();""",
]
PG_BACKWARD = [
    "DROP TRIGGER IF EXISTS billing_invoice_totals_insert ON billing_invoice;",
    "DROP TRIGGER IF EXISTS billing_invoice_totals_update ON billing_invoice;",
    "DROP TRIGGER IF EXISTS billing_invoice_totals_delete ON billing_invoice;",
    "DROP FUNCTION IF EXISTS billing_invoice_totals();",
]
PG_TRIGGERS = [
    "billing_invoice_totals_insert",
    "billing_invoice_totals_update",
    "billing_invoice_totals_delete",
]

# --- SQLite ---------------------------------------------------------------------------


def _sqlite_part(row: str, sign: str) -> list[str]:
    # Decimals are stored as floats: each is brought back to whole thousandths first.
    def thousandths(column: str) -> str:
        return f"CAST(ROUND({row}.{column} * 1000) AS INTEGER)"

    return _part(
        row,
        a=thousandths("amount"),
        p=thousandths("amount_paid"),
        c=thousandths("amount_credited"),
        sign=sign,
    )


SQLITE_ADD = (
    f"INSERT INTO billing_invoicetotals ({TARGET}) "
    f"SELECT {_select(_sqlite_part('NEW', '+'))} WHERE true {UPSERT};"
)


def _sqlite_take_away(row: str) -> str:
    values = _sqlite_part(row, "")
    key, sums = values[: len(KEY)], values[len(KEY) :]
    return (
        "UPDATE billing_invoicetotals SET "
        + ", ".join(f"{c} = {c} - {v}" for c, v in zip(SUMS, sums, strict=True))
        + " WHERE "
        + " AND ".join(f"{c} = {v}" for c, v in zip(KEY, key, strict=True))
        + ";"
    )


SQLITE_CHANGED = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in COLUMNS)

SQLITE_FORWARD = [
    f"""CREATE TRIGGER billing_invoice_totals_insert
    AFTER INSERT ON billing_invoice FOR EACH ROW
    BEGIN {SQLITE_ADD} END;""",
    f"""CREATE TRIGGER billing_invoice_totals_update
    AFTER UPDATE OF {", ".join(COLUMNS)} ON billing_invoice
    FOR EACH ROW WHEN {SQLITE_CHANGED}
    BEGIN {_sqlite_take_away("OLD")} {SQLITE_ADD} END;""",
    f"""CREATE TRIGGER billing_invoice_totals_delete
    AFTER DELETE ON billing_invoice FOR EACH ROW
    BEGIN {_sqlite_take_away("OLD")} END;""",
]
SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS billing_invoice_totals_insert;",
    "DROP TRIGGER IF EXISTS billing_invoice_totals_update;",
    "DROP TRIGGER IF EXISTS billing_invoice_totals_delete;",
]
SQLITE_TRIGGERS = PG_TRIGGERS

# --- the first fill: every invoice's part, added up per key ----------------------------

PG_RECOUNT = [
    "DELETE FROM billing_invoicetotals;",
    _pg_upsert(f"SELECT {_select(_pg_part('n', '+'))} FROM billing_invoice n"),
]
SQLITE_RECOUNT = [
    "DELETE FROM billing_invoicetotals;",
    f"INSERT INTO billing_invoicetotals ({TARGET}) "
    f"SELECT {', '.join(KEY)}, {', '.join(f'sum({c})' for c in SUMS)} "
    f"FROM (SELECT {_select(_sqlite_part('n', '+'))} FROM billing_invoice n) AS part "
    f"GROUP BY {', '.join(KEY)};",
]


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        statements = statements_by_vendor.get(schema_editor.connection.vendor)
        if statements is None:
            raise RuntimeError(
                f"No invoice totals triggers for {schema_editor.connection.vendor}; "
                "Tranche runs on SQLite or PostgreSQL."
            )
        for statement in statements:
            schema_editor.execute(statement, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0011_sent_invoice_guard"),
    ]

    operations = [
        migrations.CreateModel(
            name="InvoiceTotals",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("customer_id", models.BigIntegerField()),
                ("currency", models.CharField(max_length=3)),
                ("status", models.CharField(max_length=16)),
                ("sent", models.BooleanField()),
                ("count", models.BigIntegerField(default=0)),
                ("amount", models.BigIntegerField(default=0)),
                ("amount_paid", models.BigIntegerField(default=0)),
                ("amount_due", models.BigIntegerField(default=0)),
                ("credit_owed", models.BigIntegerField(default=0)),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("customer_id", "currency", "status", "sent"),
                        name="invoice_totals_key",
                    )
                ],
            },
        ),
        migrations.RunPython(
            _run(
                {
                    "sqlite": SQLITE_FORWARD + SQLITE_RECOUNT,
                    "postgresql": PG_FORWARD + PG_RECOUNT,
                }
            ),
            _run({"sqlite": SQLITE_BACKWARD, "postgresql": PG_BACKWARD}),
        ),
    ]
