from django.db.models import Count
from django.shortcuts import redirect, render

from otomat.catalog.models import Product
from otomat.instances.models import Instance


def home(request):
    """Visitors see the pitch and the catalog; customers their instances; staff the overview."""
    if not request.user.is_authenticated:
        products = Product.objects.filter(is_listed=True)[:6]
        return render(request, "web/landing.html", {"products": products})
    if request.user.is_staff:
        counts = dict(
            Instance.objects.values_list("state").annotate(n=Count("id")).values_list("state", "n")
        )
        recent_failures = Instance.objects.filter(state=Instance.State.FAILED).select_related(
            "account", "version__product"
        )[:10]
        return render(
            request,
            "web/owner_home.html",
            {"counts": counts, "states": Instance.State, "recent_failures": recent_failures},
        )
    return redirect("instances:list")
