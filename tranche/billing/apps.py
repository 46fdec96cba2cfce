from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "tranche.billing"
    label = "billing"
