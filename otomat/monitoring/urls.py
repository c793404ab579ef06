from django.urls import path

from otomat.monitoring import views_staff

app_name = "monitoring"
urlpatterns = [
    path("rules/", views_staff.rules, name="rules"),
    path("rules/<str:check>/", views_staff.rule_edit, name="rule_edit"),
    path("incidents/", views_staff.incident_list, name="incidents"),
    path("incidents/new/", views_staff.incident_new, name="incident_new"),
    path("incidents/<int:pk>/", views_staff.incident_detail, name="incident"),
    path("windows/", views_staff.windows, name="windows"),
    path("windows/<str:kind>/<int:pk>/end/", views_staff.window_end, name="window_end"),
    path("preferences/", views_staff.preferences, name="preferences"),
]
