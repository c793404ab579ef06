from django.urls import path

from otomat.projects import views, views_staff

app_name = "projects"
urlpatterns = [
    # public (no login)
    path("estimate/", views.estimate_page, name="estimator"),
    path("estimate/preview/", views.estimate_preview, name="estimate_preview"),
    path("e/<str:token>/", views.estimate_detail, name="estimate"),
    path("contact/", views.contact, name="contact"),
    # the customer's own
    path("mine/", views.my_leads, name="my_leads"),
    path("mine/<int:pk>/", views.my_lead, name="my_lead"),
    # staff
    path("manage/leads/", views_staff.lead_list, name="leads"),
    path("manage/leads/new/", views_staff.lead_new, name="lead_new"),
    path("manage/leads/<int:pk>/", views_staff.lead_detail, name="lead"),
    path("manage/leads/<int:pk>/action/", views_staff.lead_action, name="lead_action"),
    # the owner's estimator
    path("manage/options/", views_staff.option_list, name="options"),
    path("manage/options/new/", views_staff.option_edit, name="option_new"),
    path("manage/options/<int:pk>/", views_staff.option_edit, name="option_edit"),
    path("manage/options/<int:pk>/delete/", views_staff.option_delete, name="option_delete"),
    path("manage/settings/", views_staff.estimator_settings, name="settings"),
]
