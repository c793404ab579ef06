from django.urls import path

from otomat.catalog import views

# The catalog's own pages. The product page, its "Try it" and the live field check show plans
# and instances too: they are composed in otomat.web and added to this namespace there
# (otomat/web/catalog_urls.py, which the project's URLs include at /catalog/).
app_name = "catalog"
urlpatterns = [
    path("", views.product_list, name="list"),
    path("manage/", views.manage, name="manage"),
    path("manage/upload/", views.upload, name="upload"),
]
