"""Product bugs: three customers report the same failure; staff link the tickets to one bug
("affects 3 instances"), reproduce it in a sandbox, and when the fixed version is released all
three customers are told and upgrade in one click. The public known-issues page shows the bug
without any customer detail."""

from __future__ import annotations

import re
import shutil

import pytest
from django.urls import reverse
from django.utils import translation
from django.utils.translation import ngettext

from otomat.accounts.services import sign_up
from otomat.conftest import REPO
from otomat.instances.models import Instance
from otomat.notify.models import Notification
from otomat.support import bugs, tickets
from otomat.support.models import ProductBug, Ticket

pytestmark = pytest.mark.smoke


@pytest.fixture
def fixed_version(greeter, tmp_path):
    from otomat.catalog.services import import_product

    source = tmp_path / "greeter-1.0.1"
    shutil.copytree(REPO / "products" / "greeter", source)
    manifest = source / "otomat.toml"
    manifest.write_text(re.sub(r'(?m)^version = ".*"$', 'version = "1.0.1"', manifest.read_text()))
    return import_product(source, actor=None)


def test_three_reports_one_bug_three_customers_told_on_release(
    client, cast, department, sla_policy, installed, fixed_version
):
    dave = sign_up(
        email="dave@example.com",
        password=cast.password,
        full_name="Dave Dunn",
        account_name="Dave's Shop",
    )
    reporters = [cast.alice, cast.charlie, dave]
    reports = []
    for person in reporters:
        instance = installed(person, name=f"{person.first_name}'s bot")
        reports.append(
            tickets.open_ticket(
                account=person.account,
                requester=person,
                subject="Bot forgets the welcome text",
                body="After a restart it says the default text.",
                instance=instance,
                kind=Ticket.Kind.PROBLEM,
            )
        )
    client.force_login(cast.staff)
    response = client.post(
        reverse("support:action", args=[reports[0].number]),
        {
            "action": "bug",
            "title": "Welcome text lost on restart",
            "tickets": [reports[1].number, reports[2].number],
        },
    )
    bug = ProductBug.objects.get()
    assert response["Location"] == reverse("support:bug", args=[bug.pk])
    page = client.get(reverse("support:bug", args=[bug.pk])).content.decode()
    assert "Affects 3 instances" in page
    assert bug.affected_instances().count() == 3
    assert all(t.messages.filter(kind="system").exists() for t in bug.tickets.all())

    # Not public yet: the known-issues page shows nothing; then a public title only.
    issues = reverse("support:known_issues", args=["greeter"])
    assert "Welcome text lost" not in client.get(issues).content.decode()
    bug.is_public, bug.public_title = True, "Custom welcome text may reset after a restart"
    bug.save()
    client.logout()
    public = client.get(issues).content.decode()
    assert "Custom welcome text may reset" in public
    assert "Alice" not in public and "Charlie" not in public and "T-000" not in public

    # Released: every affected customer is told once, with the upgrade link.
    told = bugs.release_fix(bug, fixed_version, actor=cast.staff)
    assert told == 3
    notices = Notification.objects.filter(kind="support/fix_released", channel="email")
    assert sorted(notices.values_list("user__email", flat=True)) == [
        "alice@example.com",
        "charlie@example.com",
        "dave@example.com",
    ]
    bug.refresh_from_db()
    assert bug.status == ProductBug.Status.RELEASED and bug.fixed_in == fixed_version

    # One click on the instance page upgrades it.
    instance = reports[1].instance
    client.force_login(cast.charlie)
    detail = client.get(reverse("instances:detail", args=[instance.id])).content.decode()
    assert "Upgrade to 1.0.1" in detail and "Custom welcome text may reset" in detail
    client.post(reverse("instances:upgrade", args=[instance.id]), {"version": fixed_version.pk})
    instance.refresh_from_db()
    assert instance.version == fixed_version and instance.state == "provisioning"
    # Another customer cannot upgrade it (404), nor see the bug's staff page.
    client.force_login(cast.alice)
    assert (
        client.post(
            reverse("instances:upgrade", args=[instance.id]), {"version": fixed_version.pk}
        ).status_code
        == 404
    )
    assert client.get(reverse("support:bug", args=[bug.pk])).status_code == 404


def test_tickets_of_other_products_or_without_instance_are_refused(cast, department, installed):
    instance = installed()
    general = tickets.open_ticket(
        account=cast.alice.account, requester=cast.alice, subject="Hi", body="?"
    )
    about = tickets.open_ticket(
        account=cast.alice.account, requester=cast.alice, subject="X", body="?", instance=instance
    )
    with pytest.raises(tickets.TicketError, match="one product"):
        bugs.link_tickets([general, about], actor=cast.staff, title="x")
    with pytest.raises(tickets.TicketError, match="title"):
        bugs.link_tickets([about], actor=cast.staff, title="  ")
    with pytest.raises(tickets.TicketError):
        bugs.link_tickets([about], actor=cast.alice, title="x")
    assert not ProductBug.objects.exists()


def test_the_fix_is_offered_only_in_versions_newer_than_the_affected(
    client, cast, department, sla_policy, installed, fixed_version
):
    instance = installed()  # runs greeter 1.0.0, imported before 1.0.1
    report = tickets.open_ticket(
        account=cast.alice.account,
        requester=cast.alice,
        subject="Broken",
        body="!",
        instance=instance,
        kind=Ticket.Kind.PROBLEM,
    )
    bug = bugs.link_tickets([report], actor=cast.staff, title="Welcome text lost")
    assert list(bugs.fix_candidates(bug)) == [fixed_version]
    client.force_login(cast.staff)
    page = client.get(reverse("support:bug", args=[bug.pk])).content.decode()
    options = re.findall(r'<option value="(\d+)">([^<]*)</option>', page)
    assert options == [(str(fixed_version.pk), "1.0.1")]  # not the affected 1.0.0

    # The affected version itself is refused by the service and by the page, changing nothing.
    with pytest.raises(tickets.TicketError, match="newer"):
        bugs.release_fix(bug, instance.version, actor=cast.staff)
    response = client.post(
        reverse("support:bug", args=[bug.pk]),
        {"action": "release", "version": instance.version.pk},
        follow=True,
    )
    assert "newer than every affected one" in response.content.decode()
    bug.refresh_from_db()
    assert bug.status == ProductBug.Status.CONFIRMED and bug.fixed_in is None

    # Once an affected instance runs the newest version, nothing is offered.
    instance.version = fixed_version
    instance.save(update_fields=["version"])
    assert not bugs.fix_candidates(bug).exists()
    page = client.get(reverse("support:bug", args=[bug.pk])).content.decode()
    assert "No version newer than the affected ones yet" in page


def test_release_and_announcement_counts_use_plural_forms(
    client, cast, department, sla_policy, installed, fixed_version
):
    instance = installed()
    report = tickets.open_ticket(
        account=cast.alice.account,
        requester=cast.alice,
        subject="Broken",
        body="!",
        instance=instance,
        kind=Ticket.Kind.PROBLEM,
    )
    bug = bugs.link_tickets([report], actor=cast.staff, title="Welcome text lost")
    client.force_login(cast.staff)
    response = client.post(
        reverse("support:bug", args=[bug.pk]),
        {"action": "release", "version": fixed_version.pk},
        follow=True,
    )
    assert "Released; 1 customer was told." in response.content.decode()

    from otomat.support.models import Announcement

    with translation.override("pl"):
        assert (
            ngettext("Sent to %(n)s person.", "Sent to %(n)s people.", 1) % {"n": 1}
            == "Wysłano do 1 osoby."
        )
        assert (
            ngettext("Sent to %(n)s person.", "Sent to %(n)s people.", 3) % {"n": 3}
            == "Wysłano do 3 osób."
        )
    installed(cast.charlie, name="Charlie's bot")
    news = Announcement.objects.create(
        title="Maintenance", body="Tonight.", audience="product", product=fixed_version.product
    )
    response = client.post(
        reverse("support:announcement", args=[news.pk]), {"action": "send"}, follow=True
    )
    assert "Sent to 3 people." in response.content.decode()  # Alice, Bob and Charlie
    only = Announcement.objects.create(title="To Charlie", body="Hi.")
    Instance.objects.filter(account=cast.alice.account).update(state="terminated")
    only.audience, only.product = "product", fixed_version.product
    only.save()
    response = client.post(
        reverse("support:announcement", args=[only.pk]), {"action": "send"}, follow=True
    )
    assert "Sent to 1 person." in response.content.decode()
