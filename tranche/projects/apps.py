from django.apps import AppConfig


class ProjectsConfig(AppConfig):
    name = "tranche.projects"
    label = "projects"
