from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "tranche.web"
    label = "web"
