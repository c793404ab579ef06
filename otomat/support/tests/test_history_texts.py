"""A ticket's history on the staff panel is told in the reader's language: the stored English
details of the usual events, and status labels stored in whichever language changed them."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import translation

from otomat.billing.money import Money
from otomat.support import quotes, tickets
from otomat.support.history import event_text
from otomat.support.models import Ticket, TicketEvent

DETAILS = {
    ("opened", "opened by alice@example.com via web, following up T-000003"): {
        "id": "dibuka lewat Web, menindaklanjuti T-000003",
        "pl": "otwarto przez kanał: WWW, w nawiązaniu do T-000003",
    },
    ("out_of_scope", "outside what was bought: all 3 revisions used"): {
        "id": "di luar yang dibeli: semua 3 revisi sudah terpakai",
        "pl": "poza zakresem zakupu: wykorzystano wszystkie poprawki (3)",
    },
    ("status", "Waiting on us → Waiting for a paid quote"): {
        "id": None,
        "pl": None,
    },
    ("quote", "quote sent: Rp250.000 for 2 days"): {
        "id": "penawaran dikirim: Rp250.000 untuk 2 hari",
        "pl": "wysłano wycenę: Rp250.000 za 2 dni",
    },
    ("sla_escalate", "resolution time 90% used: escalated to the owner"): {
        "id": "waktu penyelesaian sudah terpakai 90%: dieskalasi ke pemilik",
        "pl": "wykorzystano 90% czasu: rozwiązanie: przekazano właścicielowi",
    },
    ("sla_breach", "first response time exceeded"): {
        "id": "waktu respons pertama terlampaui",
        "pl": "przekroczono czas: pierwsza odpowiedź",
    },
}


@pytest.mark.parametrize("lang", ["id", "pl"])
def test_the_usual_events_are_told_in_the_readers_language(lang):
    for (kind, detail), expected in DETAILS.items():
        with translation.override(lang):
            text = event_text(TicketEvent(kind=kind, detail=detail))
        assert text != detail, (lang, detail)
        if expected[lang]:
            assert text == expected[lang]
        assert "@example.com" not in text


def test_a_status_label_stored_in_another_language_is_shown_in_the_readers():
    with translation.override("id"):
        stored = f"{Ticket.Status.OPEN.label} → {Ticket.Status.RESOLVED.label}"
    with translation.override("pl"):
        shown = event_text(TicketEvent(kind="status", detail=stored))
        assert shown == f"{Ticket.Status.OPEN.label} → {Ticket.Status.RESOLVED.label}"
    assert event_text(TicketEvent(kind="note", detail="<b>as typed</b>")) == "<b>as typed</b>"


def test_the_staff_panel_shows_the_history_in_polish(
    client, cast, department, sla_policy, installed
):
    cast.owner.language = "pl"
    cast.owner.save(update_fields=["language"])
    ticket = tickets.open_ticket(
        account=cast.alice.account,
        requester=cast.alice,
        subject="Menu",
        body="Please add a menu",
        instance=installed(),
        kind=Ticket.Kind.CHANGE,
    )
    quotes.send_quote(
        ticket, staff=cast.staff, price=Money(250_000, "IDR"), days=2, description="x"
    )
    client.force_login(cast.owner)
    page = client.get(reverse("support:ticket", args=[ticket.number])).content.decode()
    history = page.split("Historia", 1)[1]
    assert "otwarto przez kanał" in history and "wysłano wycenę" in history
    assert "opened by" not in history and "quote sent" not in history
