from django.urls import path

from otomat.catalog import views

app_name = "catalog"
urlpatterns = [
    path("", views.product_list, name="list"),
    path("manage/", views.manage, name="manage"),
    path("manage/upload/", views.upload, name="upload"),
    path("<slug:slug>/", views.detail, name="detail"),
    path("<slug:slug>/check/<str:field>/", views.check_field, name="check_field"),
    path("<slug:slug>/try/", views.try_it, name="try"),
]
