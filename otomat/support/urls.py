from django.urls import path

from otomat.support import views, views_staff

app_name = "support"
urlpatterns = [
    path("", views.ticket_list, name="list"),
    path("new/", views.new_ticket, name="new"),
    path("suggest/", views.suggest, name="suggest"),
    path("entitlement/", views.entitlement_partial, name="entitlement"),
    path("t/<str:number>/", views.ticket_detail, name="ticket"),
    path("t/<str:number>/reply/", views.reply, name="reply"),
    path("t/<str:number>/status/", views.set_status, name="status"),
    path("t/<str:number>/rate/", views.rate, name="rate"),
    path("t/<str:number>/action/", views_staff.ticket_action, name="action"),
    path("quotes/<int:quote_id>/", views.quote_decision, name="quote"),
    path("attachments/<int:attachment_id>/", views.attachment, name="attachment"),
    path("kb/", views.kb_index, name="kb"),
    path("kb/<slug:slug>/", views.kb_article, name="kb_article"),
    path("announcements/", views.announcement_list, name="announcements"),
    path("a/<str:token>/", views.announcement_read, name="announcement_read"),
    path("known-issues/<slug:slug>/", views.known_issues, name="known_issues"),
    path("export/", views.export_account, name="export"),
    path("inbound/email/", views.inbound_email, name="inbound_email"),
    # staff
    path("manage/", views_staff.workload, name="workload"),
    path("manage/bugs/", views_staff.bug_list, name="bugs"),
    path("manage/bugs/<int:bug_id>/", views_staff.bug_detail, name="bug"),
    path("manage/announcements/", views_staff.announcement_list, name="announcements_manage"),
    path("manage/announcements/new/", views_staff.announcement_edit, name="announcement_new"),
    path("manage/announcements/<int:pk>/", views_staff.announcement_edit, name="announcement"),
    path("manage/sla/", views_staff.sla_report, name="sla_report"),
    path(
        "manage/accounts/<int:account_id>/end/",
        views_staff.end_relationship,
        name="end_relationship",
    ),
    path("manage/<slug:kind>/", views_staff.config_list, name="config"),
    path("manage/<slug:kind>/new/", views_staff.config_edit, name="config_new"),
    path("manage/<slug:kind>/<int:pk>/", views_staff.config_edit, name="config_edit"),
]
