from django.urls import path

from otomat.projects.booking import views

app_name = "booking"
urlpatterns = [
    # public (no login): meeting types, slots and the booking form, the lead's private link
    path("", views.meeting_types, name="types"),
    path("lead/<str:token>/", views.lead_link, name="lead"),
    path("t/<slug:slug>/", views.book_page, name="book"),
    # the attendee's secret link
    path("manage/<str:token>/", views.manage, name="manage"),
    path("manage/<str:token>/invite.ics", views.invite_ics, name="invite_ics"),
    # the host's secret feed
    path("feed/<str:token>.ics", views.feed, name="feed"),
    # the customer's own
    path("mine/", views.my_bookings, name="mine"),
    # staff: the host's pages
    path("host/", views.host_bookings, name="host"),
    path("host/bookings/<uuid:pk>/cancel/", views.host_cancel, name="host_cancel"),
    path("host/availability/", views.host_rules, name="host_rules"),
    path("host/types/", views.host_types, name="host_types"),
    path("host/types/new/", views.host_type_edit, name="host_type_new"),
    path("host/types/<int:pk>/", views.host_type_edit, name="host_type_edit"),
    path("host/calendars/", views.host_calendars, name="host_calendars"),
    path("host/calendars/<int:pk>/", views.host_calendar_action, name="host_calendar_action"),
    path("host/feed/", views.host_feed, name="host_feed"),
]
