from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "tranche.billing"
    label = "billing"

    def ready(self) -> None:
        # The outbox (below billing) makes billing's attachments through renderers
        # registered here; see tranche.notifications.attachments.
        from tranche.billing import checks  # noqa: F401 - registers its deploy checks
        from tranche.billing.services.emails import register_attachments

        register_attachments()
