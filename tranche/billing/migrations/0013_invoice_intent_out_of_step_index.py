"""A partial index for the periodic pass's look for PaymentIntents left out of step.

Only AddIndex: on SQLite it is a CREATE INDEX, not a rebuild of billing_invoice, so the
sent-invoice guard's triggers (0011) stay in place."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0012_invoice_totals"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="invoice",
            index=models.Index(
                condition=models.Q(("intent_out_of_step", True)),
                fields=["id"],
                name="invoice_intent_out_of_step",
            ),
        ),
    ]
