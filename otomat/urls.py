from django.contrib import admin
from django.urls import include, path

from otomat.accounts.views import set_language
from otomat.api.api import api
from otomat.monitoring import metrics, views_health

urlpatterns = [
    # Liveness, readiness and Prometheus metrics at the root, where probes and scrapers look.
    path("healthz", views_health.healthz, name="healthz"),
    path("readyz", views_health.readyz, name="readyz"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("", include("otomat.web.urls")),
    path("accounts/", include("otomat.accounts.urls")),
    path("catalog/", include("otomat.web.catalog_urls")),  # catalog's pages and composed ones
    path("instances/", include("otomat.web.instance_urls")),  # the same for instances
    path("billing/", include("otomat.billing.urls")),
    path("notify/", include("otomat.notify.urls")),
    path("support/", include("otomat.support.urls")),
    path("monitoring/", include("otomat.monitoring.urls")),
    path("projects/", include("otomat.projects.urls")),
    path("hooks/", include("otomat.hooks.urls")),
    path("projects/booking/", include("otomat.projects.booking.urls")),
    path("projects/offers/", include("otomat.projects.offers.urls")),
    path("projects/board/", include("otomat.projects.board.urls")),
    path("api/v1/", api.urls),
    # Before Django's own: the switcher also saves a logged-in person's language.
    path("i18n/setlang/", set_language, name="set_language"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
]

# A request over the upload limits gets a page (or, under /api/, JSON) that names the limit.
handler400 = "otomat.web.errors.bad_request"
