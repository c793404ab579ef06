"""The custom-projects pipeline at a glance, composed here because it reads four apps: for staff
what waits in each step (new leads, the next meetings, offers out, signatures awaited, cards on
us, blocked, releases coming); for a customer their own requests, meetings, offers and
projects. Each block links to its app's own pages. A fixed number of queries at any size."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from otomat.projects.board.models import Card, Project
from otomat.projects.booking.models import Booking
from otomat.projects.models import Lead
from otomat.projects.offers.models import Contract, Offer

OPEN_CARDS = [
    Card.Status.TODO,
    Card.Status.IN_PROGRESS,
    Card.Status.WAITING_CLIENT,
    Card.Status.WAITING_US,
    Card.Status.BLOCKED,
    Card.Status.STAGING,
]


@login_required
def pipeline(request: HttpRequest) -> HttpResponse:
    now = timezone.now()
    if request.user.is_staff:
        leads = Lead.objects.all()
        bookings = Booking.objects.all()
        offers = Offer.objects.all()
        contracts = Contract.objects.all()
        projects = Project.objects.all()
    else:
        # A person with no account (none is made that way, but never by filtering on NULL,
        # which would match every lead and booking without one) sees nothing.
        account = request.user.account
        if account is None:
            raise Http404
        leads = Lead.objects.filter(account=account)
        bookings = Booking.objects.filter(account=account)
        offers = Offer.objects.filter(account=account)
        contracts = Contract.objects.filter(offer__account=account)
        projects = Project.objects.filter(account=account)
    cards = Card.objects.filter(project__in=projects, status__in=OPEN_CARDS)
    context = {
        "new_leads": leads.filter(status=Lead.Status.NEW).count(),
        "leads": leads.select_related("account")[:5],
        "meetings": bookings.filter(status=Booking.Status.CONFIRMED, start__gte=now)
        .select_related("meeting_type")
        .order_by("start")[:5],
        "offers_out": offers.filter(status=Offer.Status.SENT).count(),
        "awaiting_signature": contracts.filter(status=Contract.Status.AWAITING_SIGNATURE).count(),
        "on_us": cards.filter(whose_move="us").count(),
        "on_client": cards.filter(whose_move="client").count(),
        "blocked": cards.filter(status=Card.Status.BLOCKED).count(),
        "projects": projects.filter(status=Project.Status.ACTIVE).order_by("-pk")[:10],
    }
    return render(request, "web/pipeline.html", context)
