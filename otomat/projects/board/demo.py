"""Demo data of the board: the demo customer's "Cottage booking site" project with cards in
every state the workshop review shows — waiting on the client, on us, blocked (technical and in
communication), on staging with a link, accepted — a little time logged against its 40–60 hour
estimate and one revision round of two used. ``seed_demo()`` is idempotent (the project is
found by its title on the demo account) and goes through the board's services."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from otomat.accounts.models import User
from otomat.projects.board import revisions, services
from otomat.projects.board.models import Project

TITLE = "Cottage booking site"
CARDS = [
    # (title, description, status, blocked reason, note)
    (
        "Booking calendar synced with Booking.com",
        "Dates booked there are blocked here.",
        "staging",
        "",
        "",
    ),
    ("Online payments", "Card and BLIK payments through the operator.", "waiting_client", "", ""),
    (
        "Operator panel access",
        "The payment operator's admin login.",
        "blocked",
        "communication",
        "Waiting for the operator's contract",
    ),
    ("Price list per season", "High and low season prices.", "in_progress", "", ""),
    (
        "Allegro order import",
        "Orders from Allegro into the panel.",
        "blocked",
        "technical",
        "No sandbox access yet",
    ),
    ("Gallery of cottages", "Photos with captions.", "accepted", "", ""),
]


def seed_demo(customer_email: str = "demo@otomat.local") -> Project | None:
    """The demo project, created once through the services. Returns it (None without the demo
    customer or an owner)."""
    customer = User.objects.filter(email=customer_email).first()
    owner = User.objects.filter(is_superuser=True, is_active=True).order_by("pk").first()
    if customer is None or customer.account is None or owner is None:
        return None
    existing = Project.objects.filter(account=customer.account, title=TITLE).first()
    if existing is not None:
        return existing
    now = timezone.now()
    with transaction.atomic():
        project = services.start_project(
            account=customer.account,
            title=TITLE,
            description="A booking site for holiday cottages, its calendar synced both ways.",
            revision_quota=2,
            hours_min=40,
            hours_max=60,
            milestones=["Calendar", "Payments"],
            actor=owner,
            now=now - timedelta(days=14),
        )
        calendar, payments = list(project.milestones.all())
        for i, (title, text, status, reason, note) in enumerate(CARDS):
            added = now - timedelta(days=10 - i)
            card = services.add_card(
                project,
                title=title,
                description=text,
                milestone=calendar if i < 2 else payments,
                assignee=owner,
                staging_url="https://staging.example.com/"
                if status in ("staging", "accepted")
                else "",
                actor=owner,
                now=added,
            )
            if status == "accepted":
                services.set_status(card, "staging", actor=owner, now=added + timedelta(days=1))
                services.accept_on_staging(card, user=customer, now=added + timedelta(days=2))
                revisions.request_change(
                    card,
                    user=customer,
                    body="Bigger photos, please.",
                    now=added + timedelta(days=3),
                )
            else:
                services.set_status(
                    card,
                    status,
                    reason=reason,
                    note=note,
                    actor=owner,
                    now=added + timedelta(hours=3),
                )
            services.log_time(card, staff=owner, minutes=180 + 60 * i, day=added.date(), now=now)
        services.comment(
            project.cards.get(status="waiting_client"),
            author=owner,
            body="Which operator did you sign with? We need it to set up the payments.",
            now=now - timedelta(days=2),
        )
    return project
