"""The owner's and the client's pages: the editor (and its bad input), sending, the client's
private link (in their language), accepting, declining, signing with the evidence taken from
the request, the downloads, and isolation: another customer gets a 404 everywhere."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.core import mail

from otomat.accounts.models import AuditEvent
from otomat.billing.models import Invoice
from otomat.projects.offers import contracts, services
from otomat.projects.offers.models import Contract, ContractTemplate, Offer, Signature

from .conftest import NOW, exact_data

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def editor_post(**changes):
    data = {
        "title": "Sklep",
        "currency": "PLN",
        "language": "pl",
        "valid_until": "2026-12-20",
        "revision_rounds": "2",
        "line-count": "2",
        "line-0-kind": "exact",
        "line-0-title": "Projekt",
        "line-0-quantity": "2",
        "line-0-unit_price": "1 250,50",
        "line-0-weeks_max": "2",
        "line-1-kind": "exact",
        "line-1-title": "",
        "milestone-count": "1",
        "milestone-0-title": "Start",
        "milestone-0-weeks": "1",
        "step-count": "2",
        "step-0-label": "Zaliczka",
        "step-0-trigger": "signing",
        "step-0-percent": "50",
        "step-1-label": "Reszta",
        "step-1-trigger": "milestone",
        "step-1-milestone": "1",
        "step-1-percent": "50",
    }
    data.update(changes)
    return data


def test_staff_pages_are_hidden_from_customers(client, cast, offer):
    for url in (
        "/projects/offers/",
        "/projects/offers/new/",
        f"/projects/offers/{offer.pk}/",
        f"/projects/offers/{offer.pk}/edit/",
        "/projects/offers/contract-templates/",
    ):
        assert client.get(url).status_code == 302  # to the login page
    client.force_login(cast.alice)
    for url in (
        "/projects/offers/",
        f"/projects/offers/{offer.pk}/",
        "/projects/offers/contract-templates/",
    ):
        assert client.get(url).status_code == 404
    assert client.post(f"/projects/offers/{offer.pk}/send/").status_code == 404


def test_the_editor_creates_an_offer(client, cast, lead):
    client.force_login(cast.owner)
    assert client.get("/projects/offers/new/").status_code == 200
    response = client.post("/projects/offers/new/", editor_post(lead=str(lead.pk)))
    assert response.status_code == 302, response.content.decode()[:2000]
    offer = Offer.objects.get()
    assert offer.lead == lead and offer.status == Offer.Status.DRAFT
    line = offer.lines.get()
    assert (line.quantity, line.unit_price_minor) == (2, 125_050)
    amounts = [a.amount_minor for _s, a in services.schedule_amounts(offer)]
    assert amounts == [125_050, 125_050]
    assert offer.payment_steps.last().milestone.title == "Start"
    page = client.get(f"/projects/offers/{offer.pk}/edit/")
    assert page.status_code == 200 and b"1250.50" in page.content


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"line-0-unit_price": "abc"}, "not a number"),
        ({"line-0-unit_price": "1.234"}, "decimals"),
        ({"line-0-unit_price": "-5"}, "negative"),
        ({"line-0-quantity": "1.5"}, "whole number"),
        ({"valid_until": "tomorrow"}, "not a date"),
        ({"valid_until": ""}, "required"),
        ({"currency": "BTC"}, "Unknown currency"),
        ({"step-0-percent": "40"}, "add up to"),
        ({"step-1-milestone": "9"}, "milestone"),
        ({"line-0-title": ""}, "at least one line"),
        ({"title": "x" * 300}, "too long"),
        ({"lead": "999"}, "Unknown lead"),
        ({"lead": "abc"}, "Unknown lead"),
    ],
)
def test_bad_editor_input_saves_nothing(client, cast, lead, changes, message):
    client.force_login(cast.owner)
    data = editor_post(lead=str(lead.pk))
    data.update(changes)
    response = client.post("/projects/offers/new/", data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Offer.objects.exists()


def test_editing_a_sent_offer_through_the_page_makes_version_2(client, cast, offer):
    client.force_login(cast.owner)
    response = client.post(f"/projects/offers/{offer.pk}/edit/", editor_post(title="Nowy sklep"))
    assert response.status_code == 302
    offer.refresh_from_db()
    assert offer.version == 2 and offer.title == "Nowy sklep"
    assert offer.versions.get(number=1).content["title"] == "Sklep z rezerwacjami"
    detail = client.get(f"/projects/offers/{offer.pk}/")
    assert b"version 1" in detail.content
    bad = client.post(f"/projects/offers/{offer.pk}/edit/", editor_post(title=""))
    assert bad.status_code == 400
    offer.refresh_from_db()
    assert offer.version == 2 and offer.title == "Nowy sklep"


def test_drafting_from_an_estimate_and_sending(
    client, cast, estimate, django_capture_on_commit_callbacks
):
    client.force_login(cast.owner)
    response = client.post(f"/projects/offers/from-estimate/{estimate.pk}/")
    offer = Offer.objects.get()
    assert response.url == f"/projects/offers/{offer.pk}/edit/"
    assert client.post("/projects/offers/from-estimate/999/").status_code == 404
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/projects/offers/{offer.pk}/send/")
    offer.refresh_from_db()
    assert offer.status == Offer.Status.SENT
    assert mail.outbox[-1].to == ["jan@example.pl"]


def test_the_owner_edits_the_contract_template(client, cast):
    client.force_login(cast.staff)
    assert client.get("/projects/offers/contract-templates/").status_code == 404
    client.force_login(cast.owner)
    page = client.get("/projects/offers/contract-templates/?language=pl")
    assert "Umowa o wykonanie oprogramowania" in page.content.decode()
    bad = client.post(
        "/projects/offers/contract-templates/",
        {"language": "pl", "title": "Umowa", "body": "Dla {kogos}"},
    )
    assert bad.status_code == 400 and "{kogos}" in bad.content.decode()
    assert not ContractTemplate.objects.exists()
    assert client.get("/projects/offers/contract-templates/?language=xx").status_code == 404
    ok = client.post(
        "/projects/offers/contract-templates/",
        {"language": "pl", "title": "Umowa {offer_number}", "body": "Dla {client_name}"},
    )
    assert ok.status_code == 302
    assert ContractTemplate.objects.get(language="pl").body == "Dla {client_name}"
    assert AuditEvent.objects.filter(action="contract_template.saved").exists()


def test_the_lead_reads_accepts_and_signs_by_the_private_link(client, offer):
    base = f"/projects/offers/o/{offer.token}/"
    page = client.get(base)
    assert page.status_code == 200
    text = page.content.decode()
    assert "Akceptuję ofertę" in text and "Projekt graficzny" in text  # Polish, the offer's lines
    assert client.post(base + "accept/", {"version": "abc"}).status_code == 400
    assert client.post(base + "accept/", {"version": "2"}).status_code == 400
    assert Offer.objects.get(pk=offer.pk).status == Offer.Status.SENT
    assert client.get(base + "contract/").status_code == 404  # no contract before acceptance
    response = client.post(base + "accept/", {"version": "1"}, REMOTE_ADDR="203.0.113.9")
    assert response.url == base + "contract/"
    contract = Contract.objects.get()
    sign_page = client.get(base + "contract/")
    assert contracts.consent_text("pl") in sign_page.content.decode()
    form = {
        "name": "Jan Kowalski",
        "consent": "on",
        "consent_text": contracts.consent_text("pl"),
        "document_sha256": contract.document_sha256,
    }
    missing = client.post(base + "contract/", {**form, "consent": ""})
    assert missing.status_code == 400 and not Signature.objects.exists()
    forged = client.post(base + "contract/", {**form, "consent_text": "nothing"})
    assert forged.status_code == 400 and not Signature.objects.exists()
    signed = client.post(
        base + "contract/", form, REMOTE_ADDR="203.0.113.9", HTTP_USER_AGENT="Firefox/140"
    )
    assert signed.url == base + "certificate/"
    signature = Signature.objects.get()
    assert (signature.ip, signature.user_agent) == ("203.0.113.9", "Firefox/140")
    assert Invoice.objects.count() == 1
    client.post(base + "contract/", form)  # a second click
    assert Invoice.objects.count() == 1 and Signature.objects.count() == 1
    certificate = client.get(base + "certificate/").content.decode()
    assert signature.signed_sha256 in certificate and signature.document_sha256 in certificate
    pdf = client.get(base + "contract.pdf?signed=1")
    assert pdf["Content-Type"] == "application/pdf"
    assert pdf.content == bytes(Contract.objects.get().signed_document)


def test_a_tampered_file_is_not_served(client, cast, offer):
    contract = services.accept_offer(offer, version=1, now=NOW)
    Contract.objects.filter(pk=contract.pk).update(document=b"%PDF-1.4 forged")
    response = client.get(f"/projects/offers/o/{offer.token}/contract.pdf")
    assert response.status_code == 409
    assert AuditEvent.objects.filter(action="contract.tampered").exists()
    client.force_login(cast.owner)
    assert client.get(f"/projects/offers/{offer.pk}/contract.pdf").status_code == 409
    assert "does not match" in client.get(f"/projects/offers/{offer.pk}/").content.decode()


def test_declining_through_the_page_needs_a_reason(client, offer):
    base = f"/projects/offers/o/{offer.token}/"
    assert client.post(base + "decline/", {"version": "1", "reason": ""}).status_code == 400
    assert Offer.objects.get(pk=offer.pk).status == Offer.Status.SENT
    client.post(base + "decline/", {"version": "1", "reason": "Budżet"})
    assert Offer.objects.get(pk=offer.pk).decline_reason == "Budżet"


def test_an_expired_offer_is_refused_on_the_page(client, offer):
    with time_machine.travel(dt.datetime(2027, 1, 2, tzinfo=dt.UTC), tick=False):
        response = client.post(f"/projects/offers/o/{offer.token}/accept/", {"version": "1"})
    assert response.status_code == 400 and "wygasła" in response.content.decode()
    assert not Contract.objects.exists()


def test_drafts_and_unknown_links_are_404(client, cast, lead):
    draft = services.create_offer(exact_data(), actor=cast.owner, lead=lead, now=NOW)
    assert client.get(f"/projects/offers/o/{draft.token}/").status_code == 404
    assert client.get("/projects/offers/o/nothing-here/").status_code == 404
    assert (
        client.post("/projects/offers/o/nothing-here/accept/", {"version": "1"}).status_code == 404
    )


@pytest.fixture
def alices_signed(cast):
    offer = services.create_offer(
        exact_data(language="en"), actor=cast.owner, account=cast.alice.account, now=NOW
    )
    services.send_offer(offer, actor=cast.owner, now=NOW)
    contract = services.accept_offer(offer, version=1, actor=cast.alice, now=NOW)
    contracts.sign_contract(
        contract,
        name="Alice Anders",
        consent=True,
        consent_shown=contracts.consent_text("en"),
        document_sha256=contract.document_sha256,
        user=cast.alice,
        now=NOW,
    )
    return offer


def test_a_customer_sees_their_own_offers(client, cast, alices_signed):
    client.force_login(cast.bob)  # alice's teammate
    page = client.get("/projects/offers/mine/")
    assert alices_signed.number in page.content.decode()
    response = client.get(f"/projects/offers/mine/{alices_signed.number}/")
    assert response.url == f"/projects/offers/o/{alices_signed.token}/"
    assert client.get(response.url).status_code == 200
    assert client.get(f"/projects/offers/o/{alices_signed.token}/certificate/").status_code == 200


def test_another_customer_gets_404_everywhere(client, cast, alices_signed):
    client.force_login(cast.charlie)
    base = f"/projects/offers/o/{alices_signed.token}/"
    for url in (
        base,
        base + "contract/",
        base + "contract.pdf",
        base + "contract.pdf?signed=1",
        base + "certificate/",
        f"/projects/offers/mine/{alices_signed.number}/",
    ):
        assert client.get(url).status_code == 404, url
    assert client.post(base + "accept/", {"version": "1"}).status_code == 404
    assert alices_signed.number not in client.get("/projects/offers/mine/").content.decode()
