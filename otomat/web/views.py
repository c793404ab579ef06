from django.shortcuts import redirect, render

from otomat.catalog.models import Product
from otomat.web import overview


def home(request):
    """Visitors see the pitch and the catalog; customers their instances; staff the overview."""
    if not request.user.is_authenticated:
        products = Product.objects.filter(is_listed=True)[:6]
        return render(request, "web/landing.html", {"products": products})
    if request.user.is_staff:
        return overview.owner_home(request)
    return redirect("instances:list")
