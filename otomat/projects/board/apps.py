from django.apps import AppConfig


class BoardConfig(AppConfig):
    name = "otomat.projects.board"
    label = "board"
    verbose_name = "Projects: board"
