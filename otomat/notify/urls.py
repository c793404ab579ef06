from django.urls import path

from otomat.notify import views

app_name = "notify"
urlpatterns = [path("telegram/", views.telegram, name="telegram")]
