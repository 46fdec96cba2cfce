from django.apps import AppConfig


class SalesConfig(AppConfig):
    name = "tranche.sales"
    label = "sales"
