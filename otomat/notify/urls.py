from django.urls import path

from otomat.notify import views

app_name = "notify"
urlpatterns = [
    path("telegram/", views.telegram, name="telegram"),
    path("outbox/", views.outbox, name="outbox"),
    path("outbox/<int:message_id>/", views.outbox_message, name="outbox_message"),
    path("outbox/<int:message_id>/html/", views.outbox_html, name="outbox_html"),
    path("outbox/<int:message_id>/message.eml", views.outbox_raw, name="outbox_raw"),
]
