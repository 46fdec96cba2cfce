from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "tranche.notifications"
    label = "notifications"
