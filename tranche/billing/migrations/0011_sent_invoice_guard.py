"""The database's own guard of sent invoices: once an invoice left the draft status its
figures, parties, dates and tax lines cannot change, whatever writes to the table (a
bulk ORM update, raw SQL, a future bug). Only the payment state moves (status,
amount_paid, amount_credited, paid_at, cancelled_*, provider fields, intent_out_of_step,
customer_email, updated_at, milestone_id SET NULL …).

Keep this and 0012_invoice_totals (the financials summary, also triggers on
billing_invoice) the last migrations that alter billing_invoice or billing_invoicetaxline,
or create both sets of triggers again after them: on SQLite, Django alters a table by
rebuilding it, which drops its triggers (tests/billing/test_credit_notes.py checks they
are all there).

Triggers, one set per vendor; both raise an integrity error ("sent invoice is
immutable"), which Django reports as IntegrityError."""

from django.db import migrations

# The columns a sent invoice keeps for ever (see docs/credit-notes.md).
IMMUTABLE = [
    "amount",
    "contract_amount",
    "net_amount",
    "tax_amount",
    "currency",
    "customer_id",
    "project_id",
    "number",
    "issue_date",
    "due_date",
    "description",
    "customer_name",
    "buyer_tax_id",
    "seller_tax_id",
    "price_mode",
    "tax_treatment",
    "tax_note",
    "invoice_type",
    "retainage_percentage",
    "retainage_amount",
]

MESSAGE = "sent invoice is immutable"

SQLITE_CHANGED = " OR ".join(f'NEW."{c}" IS NOT OLD."{c}"' for c in IMMUTABLE)
SQLITE_SENT_LINE = (
    "EXISTS (SELECT 1 FROM billing_invoice WHERE id = {row}.invoice_id AND status <> 'draft')"
)

SQLITE_FORWARD = [
    f"""CREATE TRIGGER billing_invoice_sent_immutable
    BEFORE UPDATE ON billing_invoice
    FOR EACH ROW WHEN OLD.status <> 'draft' AND ({SQLITE_CHANGED})
    BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END;""",
    f"""CREATE TRIGGER billing_invoice_tax_line_insert
    BEFORE INSERT ON billing_invoicetaxline
    FOR EACH ROW WHEN {SQLITE_SENT_LINE.format(row="NEW")}
    BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END;""",
    f"""CREATE TRIGGER billing_invoice_tax_line_update
    BEFORE UPDATE ON billing_invoicetaxline
    FOR EACH ROW WHEN {SQLITE_SENT_LINE.format(row="OLD")} OR {SQLITE_SENT_LINE.format(row="NEW")}
    BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END;""",
    f"""CREATE TRIGGER billing_invoice_tax_line_delete
    BEFORE DELETE ON billing_invoicetaxline
    FOR EACH ROW WHEN {SQLITE_SENT_LINE.format(row="OLD")}
    BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END;""",
]
SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS billing_invoice_sent_immutable;",
    "DROP TRIGGER IF EXISTS billing_invoice_tax_line_insert;",
    "DROP TRIGGER IF EXISTS billing_invoice_tax_line_update;",
    "DROP TRIGGER IF EXISTS billing_invoice_tax_line_delete;",
]

PG_CHANGED = " OR ".join(f'NEW."{c}" IS DISTINCT FROM OLD."{c}"' for c in IMMUTABLE)

PG_FORWARD = [
    f"""CREATE OR REPLACE FUNCTION billing_invoice_sent_immutable() RETURNS trigger AS $$
    BEGIN
        IF OLD.status <> 'draft' AND ({PG_CHANGED}) THEN
            RAISE EXCEPTION '{MESSAGE}: invoice %', OLD.id USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
    END;
    $$ LANGUAGE plpgsql;""",
    """CREATE TRIGGER billing_invoice_sent_immutable
    BEFORE UPDATE ON billing_invoice
    FOR EACH ROW EXECUTE FUNCTION billing_invoice_sent_immutable();""",
    f"""CREATE OR REPLACE FUNCTION billing_invoice_tax_line_guard() RETURNS trigger AS $$
    BEGIN
        IF (TG_OP <> 'INSERT' AND EXISTS (
                SELECT 1 FROM billing_invoice WHERE id = OLD.invoice_id AND status <> 'draft'))
           OR (TG_OP <> 'DELETE' AND EXISTS (
                SELECT 1 FROM billing_invoice WHERE id = NEW.invoice_id AND status <> 'draft'))
        THEN
            RAISE EXCEPTION '{MESSAGE}: its tax lines cannot change'
                USING ERRCODE = 'check_violation';
        END IF;
        IF TG_OP = 'DELETE' THEN
            RETURN OLD;
        END IF;
        RETURN NEW;
    END;
    $$ LANGUAGE plpgsql;""",
    """CREATE TRIGGER billing_invoice_tax_line_guard
    BEFORE INSERT OR UPDATE OR DELETE ON billing_invoicetaxline
    FOR EACH ROW EXECUTE FUNCTION billing_invoice_tax_line_guard();""",
]
PG_BACKWARD = [
    "DROP TRIGGER IF EXISTS billing_invoice_tax_line_guard ON billing_invoicetaxline;",
    "DROP FUNCTION IF EXISTS billing_invoice_tax_line_guard();",
    "DROP TRIGGER IF EXISTS billing_invoice_sent_immutable ON billing_invoice;",
    "DROP FUNCTION IF EXISTS billing_invoice_sent_immutable();",
]


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        statements = statements_by_vendor.get(schema_editor.connection.vendor)
        if statements is None:
            raise RuntimeError(
                f"No sent-invoice guard for {schema_editor.connection.vendor}; "
                "Tranche runs on SQLite or PostgreSQL."
            )
        for statement in statements:
            schema_editor.execute(statement, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0010_retainage"),
    ]

    operations = [
        migrations.RunPython(
            _run({"sqlite": SQLITE_FORWARD, "postgresql": PG_FORWARD}),
            _run({"sqlite": SQLITE_BACKWARD, "postgresql": PG_BACKWARD}),
        ),
    ]
