"""/instances/: the instances' own pages and, under the same ``instances:`` names, the pages
composed here that also show billing and the runtime (``otomat.web.instance_pages``)."""

from django.urls import path

from otomat.instances.urls import urlpatterns as instance_pages
from otomat.web import instance_pages as composed

app_name = "instances"
urlpatterns = [
    path("install/<slug:slug>/", composed.install, name="install"),
    path("<uuid:instance_id>/", composed.detail, name="detail"),
    path("<uuid:instance_id>/logs/", composed.logs_partial, name="logs"),
    *instance_pages,  # last: their "<uuid>/<action>/" would take "logs/"
]
