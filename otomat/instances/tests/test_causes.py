"""An instance's history shows the causes the services, the runner and billing store (English
codes) in the reader's language, and anything it does not know as stored."""

from __future__ import annotations

import pytest
from django.utils import translation

from otomat.instances.causes import cause_text

CAUSES = [
    "created",
    "process 4242 is answering",
    "process exited (code 1); restart #2 with backoff",
    "gave up after 5 restarts",
    "trial of 14 days started",
    "trial of 1 days started",
    "upgraded 1.0.0 → 1.1.0",
    "suspended (billing): invoice INV/2026/000007 unpaid 9 days after its due date",
    "suspended (staff): spam reports",
    "suspension lifted (billing): all overdue invoices paid",
    "terminated: invoice INV/2026/000007 unpaid 30 days after its due date",
    "cancelled by the customer; ended with the period on 2026-12-31",
]
EXPECTED = {
    "id": [
        "dibuat",
        None,
        None,
        None,
        "uji coba gratis 14 hari dimulai",
        "uji coba gratis 1 hari dimulai",
        "ditingkatkan dari 1.0.0 ke 1.1.0",
        "ditangguhkan karena tagihan belum dibayar: faktur INV/2026/000007 belum dibayar "
        "9 hari setelah jatuh tempo",
        "ditangguhkan oleh staf: spam reports",
        "penangguhan dicabut: semua faktur yang lewat jatuh tempo sudah dibayar",
        "dihentikan: faktur INV/2026/000007 belum dibayar 30 hari setelah jatuh tempo",
        "dibatalkan oleh pelanggan; berakhir bersama periodenya pada 31 Des 2026",
    ],
    "pl": [
        None,
        None,
        None,
        None,
        "rozpoczęto bezpłatny okres próbny: 14 dni",
        "rozpoczęto bezpłatny okres próbny: 1 dzień",
        "zaktualizowano z 1.0.0 do 1.1.0",
        "zawieszono z powodu nieopłaconej faktury: faktura INV/2026/000007 nieopłacona "
        "9 dni po terminie płatności",
        "zawieszono przez obsługę: spam reports",
        "zniesiono zawieszenie: opłacono wszystkie zaległe faktury",
        "zakończono: faktura INV/2026/000007 nieopłacona 30 dni po terminie płatności",
        "anulowano przez klienta; zakończono wraz z okresem 31 gru 2026",
    ],
}


@pytest.mark.parametrize("lang", ["id", "pl"])
def test_the_usual_causes_are_told_in_the_readers_language(lang):
    with translation.override(lang):
        shown = [cause_text(cause) for cause in CAUSES]
    for cause, text, expected in zip(CAUSES, shown, EXPECTED[lang], strict=True):
        assert text != cause, f"{lang}: {cause!r} left as stored"
        if expected is not None:
            assert text == expected
    for text in shown:  # none of the stored English words is left
        for english in ("process", "restart #", "trial of", "upgraded", "unpaid", "overdue"):
            assert english not in text, (lang, text)


def test_english_readers_get_plain_words_and_unknown_causes_stay_as_stored():
    with translation.override("en"):
        assert cause_text("trial of 7 days started") == "free trial of 7 days started"
        assert cause_text("upgraded 1.0.0 → 1.1.0") == "upgraded from 1.0.0 to 1.1.0"
        assert cause_text("something new") == "something new"
    with translation.override("pl"):
        assert cause_text("suspended (staff): <b>x</b>") == "zawieszono przez obsługę: <b>x</b>"
        assert cause_text("") == ""


def test_the_instance_page_tells_the_history_in_the_readers_language(client, cast, greeter):
    from django.urls import reverse

    from otomat.instances.models import Instance, InstanceEvent

    version = greeter
    instance = Instance.objects.create(
        account=cast.alice.account, version=version, name="shop", config={}
    )
    InstanceEvent.objects.create(
        instance=instance,
        from_state="pending",
        to_state="running",
        cause="trial of 14 days started",
    )
    InstanceEvent.objects.create(
        instance=instance,
        from_state="running",
        to_state="running",
        cause="process None is answering",
    )
    cast.alice.language = "pl"
    cast.alice.save()
    client.force_login(cast.alice)
    page = client.get(reverse("instances:detail", args=[instance.pk])).content.decode()
    assert "trial of 14 days started" not in page
    assert "process None is answering" not in page
