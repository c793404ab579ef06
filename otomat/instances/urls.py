from django.urls import path

from otomat.instances import views

app_name = "instances"
urlpatterns = [
    path("", views.instance_list, name="list"),
    path("manage/", views.manage, name="manage"),
    path("install/<slug:slug>/", views.install, name="install"),
    path("<uuid:instance_id>/", views.detail, name="detail"),
    path("<uuid:instance_id>/status/", views.status_partial, name="status"),
    path("<uuid:instance_id>/logs/", views.logs_partial, name="logs"),
    path("<uuid:instance_id>/edit/", views.edit, name="edit"),
    path("<uuid:instance_id>/remove/", views.remove, name="remove"),
    path("<uuid:instance_id>/sandbox/", views.open_sandbox, name="sandbox"),
    path("<uuid:instance_id>/export/", views.export, name="export"),
    path("<uuid:instance_id>/upgrade/", views.upgrade, name="upgrade"),
    path("<uuid:instance_id>/suspend/", views.suspend, name="suspend"),
    path("<uuid:instance_id>/unsuspend/", views.unsuspend, name="unsuspend"),
    path("<uuid:instance_id>/<str:name>/", views.action, name="action"),
]
