from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "tranche.accounts"
    label = "accounts"
