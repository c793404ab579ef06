"""The software house's whole pipeline, end to end, with time moved by time-machine and every
step through the parts' public services: a visitor's estimate → their lead (the owner is told)
→ a booked meeting (an external calendar's busy time blocks a slot, a second booking of the
same time is refused) → its .ics parsed back → an offer with ranges → accepted → the contract
signed with its evidence and hashes → the deposit invoice → the board with whose move → a
revision past the quota answered with a paid quote (its invoice issued on acceptance) → the
client's acceptance on staging → the production release announced and reminded."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import icalendar
import pytest
import time_machine

from otomat.accounts.models import User
from otomat.billing.models import Invoice
from otomat.billing.money import Money
from otomat.notify.models import Notification
from otomat.projects import estimator, leads
from otomat.projects.board import releases, revisions, workshop
from otomat.projects.board import services as board
from otomat.projects.booking import calendars, ical
from otomat.projects.booking import services as booking
from otomat.projects.booking.availability import free_slots
from otomat.projects.booking.tests.conftest import (  # noqa: F401  (fixtures)
    calendar_server,
    call,
    host,
)
from otomat.projects.models import Lead
from otomat.projects.offers import contracts, schedule
from otomat.projects.offers import services as offers
from otomat.projects.offers.models import Contract, OfferLine
from otomat.projects.offers.validation import LineIn, MilestoneIn, OfferIn, StepIn
from otomat.support import quotes
from otomat.support.models import Ticket

WARSAW = ZoneInfo("Europe/Warsaw")
MONDAY = date(2027, 1, 11)  # the meeting's week
START = datetime(2027, 1, 4, 10, 0, tzinfo=UTC)  # the visitor comes a week before

BUSY_MONDAY_10 = b"""BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//Google Inc//Google Calendar 70.9054//EN\r
BEGIN:VEVENT\r
UID:dentist@google.com\r
DTSTAMP:20270101T000000Z\r
DTSTART;TZID=Europe/Warsaw:20270111T100000\r
DTEND;TZID=Europe/Warsaw:20270111T110000\r
SUMMARY:Dentist\r
END:VEVENT\r
END:VCALENDAR\r
"""


def warsaw(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=WARSAW).astimezone(UTC)


@pytest.fixture(autouse=True)
def _setup(settings):
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    settings.HTTP_ALLOW_PRIVATE = True  # the external calendar is served on 127.0.0.1


@pytest.fixture
def options(db):
    from otomat.projects.demo import seed_demo

    return {o.key: o for o in seed_demo()}


def test_the_pipeline_from_estimate_to_release(cast, options, host, call, calendar_server):  # noqa: F811
    owner = cast.owner

    # 1. The estimate: a shop with online payments, a range at once.
    with time_machine.travel(START, tick=False):
        estimate = estimator.create_estimate({"shop": 1, "payments": 1}, language="pl")
        assert estimate.weeks_min < estimate.weeks_max
        assert estimate.cost_min_minor < estimate.cost_max_minor and estimate.currency == "PLN"

        # 2. The lead, with the owner told.
        lead = leads.submit_lead(
            source=Lead.Source.ESTIMATOR,
            name="Jan Kowalski",
            email="jan@example.pl",
            company="Domki nad Jeziorem",
            language="pl",
            timezone="Europe/Warsaw",
            estimate=estimate,
        )
        estimate.refresh_from_db()
        assert estimate.lead == lead
        assert Notification.objects.filter(user=owner, kind="projects/lead_received").exists()

        # 3. The meeting: the owner's Google calendar has a dentist on Monday at 10:00.
        url = calendar_server.serve("/google.ics", BUSY_MONDAY_10)
        calendar = booking.add_calendar(host, actor=owner, name="Google", url=url)
        assert calendars.refresh(calendar)
        day = datetime.combine(MONDAY, time(0), tzinfo=WARSAW)
        starts = [s.start for s in free_slots(call, day, day + timedelta(days=1), now=START)]
        assert warsaw(MONDAY, 10) not in starts and warsaw(MONDAY, 11) in starts
        with pytest.raises(booking.SlotTaken):
            booking.book(call, warsaw(MONDAY, 10), name="Jan", email="jan@example.pl", lead=lead)
        meeting = booking.book(
            call, warsaw(MONDAY, 11), name="Jan Kowalski", email="jan@example.pl", lead=lead
        )
        with pytest.raises(booking.SlotTaken):  # the same hour again: never double-booked
            booking.book(call, warsaw(MONDAY, 11), name="Ewa", email="ewa@example.pl")
        lead.refresh_from_db()
        assert lead.status == Lead.Status.MEETING

        # 4. The invitation's .ics parsed back, and the owner's feed carries the meeting.
        event = next(iter(icalendar.Calendar.from_ical(ical.invitation(meeting)).walk("VEVENT")))
        assert event.decoded("DTSTART") == warsaw(MONDAY, 11)
        assert event.decoded("DTEND") == warsaw(MONDAY, 12)
        feed = icalendar.Calendar.from_ical(ical.feed(host, [meeting]))
        assert [str(e["UID"]) for e in feed.walk("VEVENT")] == [str(event["UID"])]

    # 5. After the meeting: the estimate becomes an offer with ranges, milestones, a deposit and
    #    one revision round included.
    after_meeting = warsaw(MONDAY, 14)
    with time_machine.travel(after_meeting, tick=False):
        draft = offers.from_estimate(estimate, actor=owner)
        assert {line.kind for line in draft.lines.all()} == {OfferLine.Kind.RANGE}
        lines = tuple(
            LineIn(
                title=line.title,
                kind=line.kind,
                cost_min_minor=line.cost_min_minor,
                cost_max_minor=line.cost_max_minor,
                weeks_min=line.weeks_min,
                weeks_max=line.weeks_max,
            )
            for line in draft.lines.order_by("position", "pk")
        )
        offer = offers.update_offer(
            draft,
            OfferIn(
                title="Sklep z płatnościami",
                currency="PLN",
                language="pl",
                valid_until=MONDAY + timedelta(days=30),
                revision_rounds=1,
                agreed_total_minor=2_000_000,
                lines=lines,
                milestones=(MilestoneIn("Sklep"), MilestoneIn("Płatności")),
                steps=(
                    StepIn("Zaliczka", "signing", percent=Decimal(30)),
                    StepIn("Po wdrożeniu", "release", percent=Decimal(70)),
                ),
            ),
            actor=owner,
        )
        offer = offers.send_offer(offer, actor=owner)

        # 6. The client reads it by link and accepts: the contract awaits the signature.
        contract = offers.accept_offer(offer, version=offer.version, ip="198.51.100.4")
        offer.refresh_from_db()
        assert (
            offer.accepted_at == after_meeting
            and contract.status == Contract.Status.AWAITING_SIGNATURE
        )
        jan = User.objects.get(email="jan@example.pl")
        account = jan.account
        assert offer.account == account

        # 7. Signed with its evidence and both hashes; 8. the deposit invoice.
        assert contracts.verify(contract)
        signed = contracts.sign_contract(
            contract,
            name="Jan Kowalski",
            consent=True,
            consent_shown=contracts.consent_text(contract.language),
            document_sha256=contract.document_sha256,
            lead=lead,
            ip="198.51.100.4",
            user_agent="Mozilla/5.0 (e2e)",
        )
        assert signed.status == Contract.Status.SIGNED
        assert signed.signed_sha256 == hashlib.sha256(bytes(signed.signed_document)).hexdigest()
        assert signed.document_sha256 == hashlib.sha256(bytes(signed.document)).hexdigest()
        signature = signed.signature
        assert (signature.name, signature.ip, signature.signed_at) == (
            "Jan Kowalski",
            "198.51.100.4",
            after_meeting,
        )
        assert signature.consent_text and signature.document_sha256 == signed.document_sha256
        deposit = Invoice.objects.get(account=account)
        assert (deposit.total_minor, deposit.currency) == (600_000, "PLN")
        assert schedule.issue_on_signing(signed) == [deposit]  # once

        # 9. The board of the signed offer: its milestones, its quota, whose move.
        assert offers.signed_offer_for_account(account) == offer
        project = board.start_project_from_offer(offer, actor=owner)
        assert (project.revision_quota, project.currency) == (1, "PLN")
        assert list(project.milestones.values_list("title", flat=True)) == ["Sklep", "Płatności"]
        assert project.hours_min == estimate.weeks_min * 40
        shop = board.add_card(project, title="Koszyk i zamówienia", actor=owner)
        pay_card = board.add_card(project, title="Płatności BLIK", actor=owner)
        board.set_status(pay_card, "waiting_client", actor=owner)
        review = workshop.review(account=account)[0]
        assert [c.title for c in review.waiting_on_client] == ["Płatności BLIK"]
        assert [c.title for c in review.waiting_on_us] == ["Koszyk i zamówienia"]
        assert Notification.objects.filter(user=jan, kind="board/your_move").exists()

    # Jan answers the next morning: the move is ours again, since then.
    morning = after_meeting + timedelta(hours=18)
    with time_machine.travel(morning, tick=False):
        board.comment(pay_card, author=jan, body="Umowa z operatorem podpisana.")
        pay_card.refresh_from_db()
        assert (pay_card.whose_move, pay_card.move_since) == ("us", morning)

        # 11. The shop on staging; Jan accepts it there.
        board.update_card(
            shop, actor=owner, title=shop.title, staging_url="https://staging.example.pl/sklep"
        )
        board.set_status(shop, "staging", actor=owner)
        shop = board.accept_on_staging(shop, user=jan)
        assert (shop.status, shop.accepted_by) == ("accepted", jan)

        # 10. A change after acceptance uses the one included round; the next is past the
        #     quota: a ticket, the owner's paid quote, its invoice when Jan accepts.
        first = revisions.request_change(shop, user=jan, body="Większe zdjęcia w koszyku.")
        assert first.within_quota
        second = revisions.request_change(shop, user=jan, body="Drugi koszyk dla hurtowni.")
        assert not second.within_quota and second.ticket.account == account
        project.refresh_from_db()
        assert revisions.usage_text(project) == "1 of 1 used · 1 past the quota"
        quote = revisions.send_change_quote(
            second, staff=owner, price=Money.of("2500", "PLN"), days=5
        )
        second.ticket.refresh_from_db()
        assert second.ticket.status == Ticket.Status.AWAITING_PAYMENT
        paid_quote_invoice = quotes.accept_quote(quote, user=jan)
        assert paid_quote_invoice.kind == Invoice.Kind.SUPPORT
        assert paid_quote_invoice.total_minor == 250_000

        # 12. The production release on Friday: Jan is told at once…
        friday = MONDAY + timedelta(days=11)
        release = releases.schedule_release(project, scheduled_for=friday, actor=owner)
        assert list(release.cards.all()) == [shop]
        notice = Notification.objects.get(user=jan, kind="board/release_scheduled", channel="email")
        assert "Sklep z płatnościami" in notice.subject

    # … and reminded on Thursday (his day, in Warsaw), once.
    thursday = warsaw(friday - timedelta(days=1), 8)
    with time_machine.travel(thursday, tick=False):
        assert releases.remind_releases() == 1
        assert releases.remind_releases() == 0
    assert Notification.objects.filter(user=jan, kind="board/release_reminder").count() == 1
    project.refresh_from_db()
    assert project.release_date == friday
