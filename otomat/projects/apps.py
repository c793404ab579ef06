from django.apps import AppConfig


class ProjectsConfig(AppConfig):
    name = "otomat.projects"
    label = "projects"
    verbose_name = "Projects"
