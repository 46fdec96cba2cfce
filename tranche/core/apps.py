from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "tranche.core"
    label = "core"
