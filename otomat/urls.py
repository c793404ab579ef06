from django.contrib import admin
from django.urls import include, path

from otomat.api.api import api

urlpatterns = [
    path("", include("otomat.web.urls")),
    path("accounts/", include("otomat.accounts.urls")),
    path("catalog/", include("otomat.catalog.urls")),
    path("instances/", include("otomat.instances.urls")),
    path("billing/", include("otomat.billing.urls")),
    path("notify/", include("otomat.notify.urls")),
    path("support/", include("otomat.support.urls")),
    path("api/v1/", api.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
]
