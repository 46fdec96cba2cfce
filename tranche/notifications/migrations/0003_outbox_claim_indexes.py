"""The indexes delivery claims through: due emails in (status, next_attempt_at, id) order,
and the claims of dead workers by their age (see OutboxEmail.Meta). The new due index
replaces the (status, next_attempt_at) one, whose columns it starts with."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0002_outbox_sender_and_attachments"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="outboxemail",
            index=models.Index(fields=["status", "next_attempt_at", "id"], name="outbox_due"),
        ),
        migrations.AddIndex(
            model_name="outboxemail",
            index=models.Index(
                condition=models.Q(("status", "sending")),
                fields=["claimed_at"],
                name="outbox_claimed_while_sending",
            ),
        ),
        migrations.RemoveIndex(
            model_name="outboxemail",
            name="notificatio_status_f942fb_idx",
        ),
    ]
