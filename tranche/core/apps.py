from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "tranche.core"
    label = "core"

    def ready(self) -> None:
        # Registers this app's `check --deploy` checks.
        from tranche.core import checks  # noqa: F401
