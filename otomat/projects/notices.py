"""The owner's notice of a new lead, by email and (when they linked it) the owner's Telegram
bot, with an *Open* button to the lead's staff page. Rendered in each recipient's language;
queued inside the transaction that stored the lead (the outbox), sent after it commits."""

from __future__ import annotations

from django.conf import settings
from django.db.models import Q
from django.urls import reverse
from django.utils import translation
from django.utils.translation import pgettext

from otomat.accounts.models import User
from otomat.notify.services import notify_user


def lead_url(lead) -> str:
    return settings.BASE_URL + reverse("projects:lead", args=[lead.pk])


def _recipients(lead) -> list[User]:
    """The owner(s), and the staff member the lead is assigned to."""
    people = User.objects.filter(is_active=True).filter(
        Q(is_superuser=True) | Q(pk=lead.assignee_id or 0)
    )
    return list(people.order_by("pk")[:20])


def lead_received(lead, *, estimate=None) -> int:
    """Queue "new lead" for the owner(s); returns how many notices were queued. Once per lead
    and person (a dedupe key), whatever calls it again."""
    from otomat.projects import estimator

    queued = 0
    for person in _recipients(lead):
        with translation.override(person.language or "en"):
            markup = {
                "inline_keyboard": [[{"text": pgettext("button", "Open"), "url": lead_url(lead)}]]
            }
            summary = estimator.summary(estimate, person.language) if estimate else ""
        queued += len(
            notify_user(
                person,
                "projects/lead_received",
                {
                    "lead": lead,
                    "estimate": estimate,
                    "summary": summary,
                    "source": lead.get_source_display(),
                    "url": lead_url(lead),
                },
                dedupe_key=f"projects:lead:{lead.pk}:{person.pk}",
                reply_markup=markup,
            )
        )
    return queued
