"""Product bugs: many customers' tickets about the same defect become one bug ("affects 7
instances"); staff reproduce it in a sandbox of one affected instance; when a fixed version
ships, every affected customer is told and can upgrade in one click. Public bugs appear on the
product's known-issues page without any customer detail."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from otomat.accounts.models import User
from otomat.catalog.models import ProductVersion
from otomat.instances.models import Instance
from otomat.support.models import ProductBug, Ticket, TicketEvent, TicketMessage
from otomat.support.people import ticket_language
from otomat.support.tickets import TicketError


def link_tickets(
    tickets: list[Ticket],
    *,
    actor: User,
    bug: ProductBug | None = None,
    title: str = "",
    description: str = "",
) -> ProductBug:
    """Link ``tickets`` (of any customers, about one product) to ``bug``, or to a new bug with
    ``title``. Each ticket gets a note and an event; customers are told their report is known."""
    if not actor.is_staff:
        raise TicketError("Only staff link tickets to bugs.")
    if not tickets:
        raise TicketError("Choose the tickets to link.")
    products = {t.product_id for t in tickets}
    if None in products or len(products) != 1:
        raise TicketError("Link tickets about one product (each must name its instance).")
    product_id = products.pop()
    with transaction.atomic():
        if bug is None:
            title = " ".join((title or "").split())[:200]
            if not title:
                raise TicketError("Give the bug a title.")
            bug = ProductBug.objects.create(
                product_id=product_id, title=title, description=description, created_by=actor
            )
        elif bug.product_id != product_id:
            raise TicketError("That bug belongs to another product.")
        for ticket in tickets:
            if ticket.bug_id == bug.pk:
                continue
            Ticket.objects.filter(pk=ticket.pk).update(bug=bug, updated_at=timezone.now())
            TicketEvent.objects.create(
                ticket=ticket, kind="bug", detail=f"linked to product bug #{bug.pk}", actor=actor
            )
            with translation.override(ticket_language(ticket)):
                body = _(
                    "This is a known problem of the product; we are working on it and will "
                    "tell you when a fixed version is out."
                )
            TicketMessage.objects.create(ticket=ticket, kind=TicketMessage.Kind.SYSTEM, body=body)
    return bug


def set_status(bug: ProductBug, status: str, *, actor: User) -> ProductBug:
    if status not in ProductBug.Status.values or status == ProductBug.Status.RELEASED:
        raise TicketError("Choose a status (a release is recorded with its version).")
    bug.status = status
    bug.save(update_fields=["status"])
    return bug


def fix_candidates(bug: ProductBug):
    """The versions that can carry the fix: the product's versions newer (imported later, as
    ``Product.latest_version`` orders them) than every version an affected instance runs —
    never an affected version itself. Newest first."""
    versions = ProductVersion.objects.filter(product_id=bug.product_id)
    affected = list(
        ProductVersion.objects.filter(instances__tickets__bug=bug)
        .distinct()
        .order_by("-created_at", "-id")[:1]
    )
    if affected:
        newest = affected[0]
        versions = versions.filter(
            Q(created_at__gt=newest.created_at) | Q(created_at=newest.created_at, id__gt=newest.id)
        )
    return versions.order_by("-created_at", "-id")


def release_fix(bug: ProductBug, version: ProductVersion, *, actor: User) -> int:
    """The fix ships in ``version``: mark the bug released and tell every affected customer
    (once each), with a one-click upgrade link. Returns how many customers were told."""
    from otomat.support import notices

    if version.product_id != bug.product_id:
        raise TicketError("That version belongs to another product.")
    if not fix_candidates(bug).filter(pk=version.pk).exists():
        raise TicketError(
            _(
                "Choose a version newer than every affected one: the fix cannot be in a "
                "version that has the bug."
            )
        )
    with transaction.atomic():
        bug = ProductBug.objects.select_for_update().get(pk=bug.pk)
        bug.status, bug.fixed_in, bug.released_at = (
            ProductBug.Status.RELEASED,
            version,
            timezone.now(),
        )
        bug.save(update_fields=["status", "fixed_in", "released_at"])
        told = 0
        accounts = {}
        for instance in bug.affected_instances().select_related("account"):
            if instance.state == Instance.State.TERMINATED:
                continue
            accounts.setdefault(instance.account_id, (instance.account, []))[1].append(instance)
        for account, instances in accounts.values():
            notices.fix_released(bug, account, instances)
            told += 1
        for ticket in bug.tickets.exclude(status__in=[Ticket.Status.CLOSED, Ticket.Status.MERGED]):
            with translation.override(ticket_language(ticket)):
                body = _("Fixed in version %(version)s. Upgrade from your instance's page.") % {
                    "version": version.version
                }
            TicketMessage.objects.create(ticket=ticket, kind=TicketMessage.Kind.SYSTEM, body=body)
            TicketEvent.objects.create(
                ticket=ticket, kind="bug", detail=f"fix released in {version.version}", actor=actor
            )
    return told
