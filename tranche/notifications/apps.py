from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "tranche.notifications"
    label = "notifications"

    def ready(self) -> None:
        # Registers this app's `check --deploy` checks.
        from tranche.notifications import checks  # noqa: F401
