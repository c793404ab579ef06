"""/catalog/: the catalog's own pages and, under the same ``catalog:`` names, the pages composed
here that also show plans and instances (``otomat.web.catalog_pages``)."""

from django.urls import path

from otomat.catalog.urls import urlpatterns as catalog_pages
from otomat.web import catalog_pages as composed

app_name = "catalog"
urlpatterns = [
    *catalog_pages,  # first: "manage/" is not a product's slug
    path("<slug:slug>/", composed.detail, name="detail"),
    path("<slug:slug>/check/<str:field>/", composed.check_field, name="check_field"),
    path("<slug:slug>/try/", composed.try_it, name="try"),
]
