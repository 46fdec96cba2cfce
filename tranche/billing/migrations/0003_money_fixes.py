"""Manual payment references leave the unique provider_reference column.

A free-text reference typed for a bank transfer shared the unique column with the
PaymentIntent ids of card payments, so a reference equal to another invoice's intent id
blocked that intent's real payment. References of payments recorded by hand move to
their own, non-unique column."""

from django.db import migrations, models

MANUAL_METHODS = ("bank_transfer", "cash", "check", "other")


def move_manual_references(apps, schema_editor):
    Payment = apps.get_model("billing", "Payment")
    manual = Payment.objects.filter(method__in=MANUAL_METHODS, provider_reference__isnull=False)
    for payment in manual.iterator():
        payment.reference = payment.provider_reference[:200]
        payment.provider_reference = None
        payment.save(update_fields=["reference", "provider_reference"])


def move_them_back(apps, schema_editor):
    Payment = apps.get_model("billing", "Payment")
    manual = Payment.objects.filter(method__in=MANUAL_METHODS).exclude(reference="")
    for payment in manual.iterator():
        payment.provider_reference = payment.reference
        payment.reference = ""
        payment.save(update_fields=["reference", "provider_reference"])


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0002_stripeevent_payment"),
    ]

    operations = [
        migrations.AddField(
            model_name="payment",
            name="reference",
            field=models.CharField(blank=True, default="", max_length=200),
        ),
        migrations.RunPython(move_manual_references, move_them_back),
    ]
