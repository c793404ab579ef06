from django.urls import path

from otomat.instances import views

# The instances' own pages. The order form, the instance page and its logs also show billing and
# the runtime: they are composed in otomat.web and added to this namespace there
# (otomat/web/instance_urls.py, which the project's URLs include at /instances/).
app_name = "instances"
urlpatterns = [
    path("", views.instance_list, name="list"),
    path("manage/", views.manage, name="manage"),
    path("<uuid:instance_id>/status/", views.status_partial, name="status"),
    path("<uuid:instance_id>/edit/", views.edit, name="edit"),
    path("<uuid:instance_id>/remove/", views.remove, name="remove"),
    path("<uuid:instance_id>/sandbox/", views.open_sandbox, name="sandbox"),
    path("<uuid:instance_id>/export/", views.export, name="export"),
    path("<uuid:instance_id>/upgrade/", views.upgrade, name="upgrade"),
    path("<uuid:instance_id>/suspend/", views.suspend, name="suspend"),
    path("<uuid:instance_id>/unsuspend/", views.unsuspend, name="unsuspend"),
    path("<uuid:instance_id>/<str:name>/", views.action, name="action"),
]
