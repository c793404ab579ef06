"""Staff's support pages: the workload (whose move it is, SLA at risk), the actions on a
ticket, product bugs, announcements, the SLA report, configuration, and ending a relationship
with a customer."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_POST

from otomat.accounts.config_pages import ConfigPages
from otomat.accounts.models import Account, User
from otomat.accounts.services import record_audit
from otomat.billing.views_staff import staff_required
from otomat.catalog.models import ProductVersion
from otomat.support import (
    announcements,
    bugs,
    entitlements,
    kb,
    people,
    quotes,
    relationships,
    tickets,
)
from otomat.support.forms import (
    AnnouncementForm,
    ArticleForm,
    BugForm,
    CannedReplyForm,
    DepartmentForm,
    KbCategoryForm,
    QuoteForm,
    SlaPolicyForm,
    SupportTermsForm,
    TimeForm,
)
from otomat.support.models import (
    Announcement,
    Article,
    CannedReply,
    Department,
    KbCategory,
    Priority,
    ProductBug,
    SlaPolicy,
    SupportTerms,
    Ticket,
    TimeEntry,
)

OPEN = [Ticket.Status.OPEN, Ticket.Status.PENDING, Ticket.Status.AWAITING_PAYMENT]


def staff_ticket_context(ticket: Ticket) -> dict:
    """What the ticket page shows staff besides the conversation."""
    currency = quotes.currency_for(ticket)
    # Read once for all the canned replies filled below (not once per reply).
    entitlement = entitlements.for_instance(ticket.instance) if ticket.instance else None
    return {
        "staff_people": User.objects.filter(is_staff=True, is_active=True),
        "departments": Department.objects.all(),
        "priorities": Priority.choices,
        "canned": CannedReply.objects.filter(
            Q(department__isnull=True) | Q(department=ticket.department)
        ),
        "quote_form": QuoteForm(prefix="quote"),
        "quote_currency": currency,
        "time_form": TimeForm(prefix="time"),
        "time_entries": ticket.time_entries.select_related("staff"),
        "open_bugs": ProductBug.objects.filter(product=ticket.product).exclude(
            status__in=[ProductBug.Status.RELEASED, ProductBug.Status.WONT_FIX]
        )
        if ticket.product_id
        else [],
        "same_account_open": Ticket.objects.filter(account=ticket.account, status__in=OPEN).exclude(
            pk=ticket.pk
        ),
        "canned_filled": {
            c.pk: quotes.render_canned(c.body, ticket, entitlement=entitlement)
            for c in CannedReply.objects.filter(out_of_scope=False)[:30]
        },
    }


@staff_required
def workload(request: HttpRequest) -> HttpResponse:
    """Open tickets by whose move it is, the SLA at risk first."""
    now = timezone.now()
    # The ticket table names the requester: loaded with the row, not once per ticket.
    qs = Ticket.objects.filter(status__in=OPEN).select_related(
        "account", "assignee", "department", "requester"
    )
    assignee = request.GET.get("assignee", "")
    if assignee == "me":
        qs = qs.filter(assignee=request.user)
    elif assignee == "none":
        qs = qs.filter(assignee__isnull=True)
    at_risk = qs.filter(
        Q(response_due__lte=now + timedelta(hours=4))
        | Q(resolution_due__lte=now + timedelta(hours=4))
    ).order_by("response_due", "resolution_due")[:20]
    ours = qs.filter(status=Ticket.Status.OPEN).order_by("response_due", "created_at")
    theirs = qs.exclude(status=Ticket.Status.OPEN).order_by("-updated_at")
    per_person = people.workload_per_person(
        Ticket.objects.filter(status=Ticket.Status.OPEN)
        .values("assignee")
        .annotate(n=Count("id"))
        .order_by("-n")
    )
    return render(
        request,
        "support/staff/workload.html",
        {
            "at_risk": at_risk,
            "ours": Paginator(ours, 50).get_page(request.GET.get("page")),
            "theirs": theirs[:50],
            "theirs_count": theirs.count(),
            "per_person": per_person,
            "assignee": assignee,
            "now": now,
            "out_of_scope": qs.filter(out_of_scope=True, status=Ticket.Status.OPEN).count(),
        },
    )


@staff_required
@require_POST
def ticket_action(request: HttpRequest, number: str) -> HttpResponse:
    """Staff actions from the ticket page: assign, priority, quote, time, bug, merge, split,
    withdraw a quote, draft an article."""
    ticket = get_object_or_404(Ticket.objects.select_related("account", "instance"), number=number)
    action = request.POST.get("action", "")
    try:
        if action == "assign":
            person = User.objects.filter(
                pk=request.POST.get("assignee") or 0, is_staff=True
            ).first()
            tickets.assign(ticket, person, actor=request.user)
        elif action == "department":
            department = get_object_or_404(Department, pk=request.POST.get("department") or 0)
            tickets.set_department(ticket, department, actor=request.user)
        elif action == "priority":
            tickets.set_priority(ticket, request.POST.get("priority", ""), actor=request.user)
        elif action == "quote":
            form = QuoteForm(request.POST, prefix="quote")
            if not form.is_valid():
                raise tickets.TicketError(
                    " ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items())
                )
            currency = quotes.currency_for(ticket)
            price = form.fields["price"].clean_amount(form.cleaned_data["price"], currency)
            quotes.send_quote(
                ticket,
                staff=request.user,
                price=price,
                days=form.cleaned_data["days"],
                description=form.cleaned_data["description"],
                reply=form.cleaned_data["reply"],
            )
            messages.success(request, _("Out-of-scope reply and quote sent."))
            left = (
                entitlements.for_instance(ticket.instance).revisions_left if ticket.instance else 0
            )
            if left:
                messages.warning(
                    request,
                    ngettext(
                        "Check the reply: %(n)s free revision is still left on this instance.",
                        "Check the reply: %(n)s free revisions are still left on this instance.",
                        left,
                    )
                    % {"n": left},
                )
        elif action == "withdraw_quote":
            quote = get_object_or_404(ticket.quotes, pk=request.POST.get("quote") or 0)
            quotes.decline_quote(quote, user=request.user)
        elif action == "time":
            form = TimeForm(request.POST, prefix="time")
            if not form.is_valid():
                raise tickets.TicketError(_("Enter minutes between 1 and 1440."))
            paid = ticket.quotes.filter(status="paid").first()
            TimeEntry.objects.create(
                ticket=ticket,
                staff=request.user,
                minutes=form.cleaned_data["minutes"],
                note=form.cleaned_data["note"],
                quote=paid,
            )
        elif action == "bug":
            chosen = list(
                Ticket.objects.filter(number__in=request.POST.getlist("tickets") or [ticket.number])
            )
            if ticket not in chosen:
                chosen.append(ticket)
            existing = ProductBug.objects.filter(pk=request.POST.get("bug") or 0).first()
            bug = bugs.link_tickets(
                chosen,
                actor=request.user,
                bug=existing,
                title=request.POST.get("title", ""),
            )
            messages.success(request, _("Linked to the product bug."))
            return redirect("support:bug", bug_id=bug.pk)
        elif action == "merge":
            sources = list(Ticket.objects.filter(number__in=request.POST.getlist("tickets")))
            tickets.merge(sources, ticket, actor=request.user)
            messages.success(request, _("Merged."))
        elif action == "split":
            ids = [int(i) for i in request.POST.getlist("messages") if i.isdigit()]
            new = tickets.split(
                ticket, ids, subject=request.POST.get("subject", ""), actor=request.user
            )
            return redirect("support:ticket", number=new.number)
        elif action == "article":
            article = kb.draft_from_ticket(ticket, actor=request.user)
            messages.success(request, _("Draft article created; edit and publish it."))
            return redirect("support:config_edit", kind="articles", pk=article.pk)
        else:
            raise Http404
    except (tickets.TicketError, ValidationError) as exc:
        messages.error(request, " ".join(getattr(exc, "messages", None) or [str(exc)]))
    return redirect("support:ticket", number=ticket.number)


# -- bugs ------------------------------------------------------------------------------------


@staff_required
def bug_list(request: HttpRequest) -> HttpResponse:
    qs = ProductBug.objects.select_related("product", "fixed_in").annotate(
        reports=Count("tickets", distinct=True),
        instances=Count("tickets__instance", distinct=True),
    )
    status = request.GET.get("status", "")
    if status in ProductBug.Status.values:
        qs = qs.filter(status=status)
    page = Paginator(qs.order_by("-created_at", "-id"), 25).get_page(request.GET.get("page"))
    return render(
        request,
        "support/staff/bugs.html",
        {"page": page, "status": status, "statuses": ProductBug.Status.choices},
    )


@staff_required
def bug_detail(request: HttpRequest, bug_id: int) -> HttpResponse:
    bug = get_object_or_404(ProductBug.objects.select_related("product", "fixed_in"), pk=bug_id)
    form = BugForm(request.POST or None, instance=bug, prefix="bug")
    if request.method == "POST":
        if request.POST.get("action") == "release":
            version = ProductVersion.objects.filter(
                pk=request.POST.get("version") or 0, product=bug.product
            ).first()
            if version is None:
                messages.error(request, _("Choose the version with the fix."))
            else:
                try:
                    told = bugs.release_fix(bug, version, actor=request.user)
                except tickets.TicketError as exc:
                    messages.error(request, str(exc))
                else:
                    messages.success(
                        request,
                        ngettext(
                            "Released; %(n)s customer was told.",
                            "Released; %(n)s customers were told.",
                            told,
                        )
                        % {"n": told},
                    )
            return redirect("support:bug", bug_id=bug.pk)
        if form.is_valid():
            form.save()
            record_audit("support.bug_saved", actor=request.user, target=bug)
            messages.success(request, _("Saved."))
            return redirect("support:bug", bug_id=bug.pk)
    instances = bug.affected_instances().select_related("account", "version")
    return render(
        request,
        "support/staff/bug.html",
        {
            "bug": bug,
            "form": form,
            "tickets": bug.tickets.select_related("account", "instance"),
            "instances": instances,
            "versions": bugs.fix_candidates(bug),
        },
        status=400 if form.errors else 200,
    )


# -- announcements ------------------------------------------------------------------------------


@staff_required
def announcement_list(request: HttpRequest) -> HttpResponse:
    qs = Announcement.objects.select_related("product").annotate(
        sent_to=Count("receipts"), read=Count("receipts", filter=Q(receipts__read_at__isnull=False))
    )
    page = Paginator(qs.order_by("-created_at", "-id"), 25).get_page(request.GET.get("page"))
    return render(request, "support/staff/announcements.html", {"page": page})


@staff_required
def announcement_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    item = get_object_or_404(Announcement, pk=pk) if pk else None
    if (
        item is not None
        and item.sent_at is not None
        and request.method == "POST"
        and request.POST.get("action") != "send"
    ):
        messages.error(request, _("It was sent; it cannot be changed."))
        return redirect("support:announcement", pk=item.pk)
    form = AnnouncementForm(request.POST or None, instance=item)
    if request.method == "POST":
        if request.POST.get("action") == "send" and item is not None:
            try:
                count = announcements.send(item, actor=request.user)
            except tickets.TicketError as exc:
                messages.error(request, str(exc))
            else:
                messages.success(
                    request,
                    ngettext("Sent to %(n)s person.", "Sent to %(n)s people.", count)
                    % {"n": count},
                )
            return redirect("support:announcement", pk=item.pk)
        if form.is_valid():
            saved = form.save(commit=False)
            saved.created_by = saved.created_by or request.user
            saved.save()
            messages.success(request, _("Saved. Check it, then send it."))
            return redirect("support:announcement", pk=saved.pk)
    receipts = item.receipts.select_related("user").order_by("read_at") if item else []
    return render(
        request,
        "support/staff/announcement.html",
        {
            "item": item,
            "form": form,
            "receipts": receipts,
            "read": sum(1 for r in receipts if r.read_at) if item else 0,
        },
        status=400 if form.errors else 200,
    )


# -- SLA report ----------------------------------------------------------------------------------


@staff_required
def sla_report(request: HttpRequest) -> HttpResponse:
    """Per month and priority: tickets, first responses and resolutions within their SLA."""
    from django.db.models.functions import TruncMonth

    since = timezone.now() - timedelta(days=365)
    rows = (
        Ticket.objects.filter(created_at__gte=since, sla_policy__isnull=False)
        .exclude(status=Ticket.Status.MERGED)
        .annotate(month=TruncMonth("created_at"))
        .values("month", "priority")
        .annotate(
            total=Count("id"),
            responded=Count("id", filter=Q(first_response_at__isnull=False)),
            response_breached=Count("id", filter=Q(first_response_breached=True)),
            resolved=Count("id", filter=Q(resolved_at__isnull=False)),
            resolution_breached=Count("id", filter=Q(resolution_breached=True)),
            rated=Count("id", filter=Q(rating__isnull=False)),
        )
        .order_by("-month", "priority")
    )
    table = []
    for row in rows:
        responded = row["responded"] or 0
        resolved = row["resolved"] or 0
        table.append(
            row
            | {
                "response_met": round(100 * (responded - row["response_breached"]) / responded)
                if responded
                else None,
                "resolution_met": round(100 * (resolved - row["resolution_breached"]) / resolved)
                if resolved
                else None,
            }
        )
    return render(request, "support/staff/sla_report.html", {"table": table})


# -- ending a relationship ------------------------------------------------------------------


@staff_required
def end_relationship(request: HttpRequest, account_id: int) -> HttpResponse:
    account = get_object_or_404(Account, pk=account_id, is_internal=False)
    error = ""
    if request.method == "POST":
        if request.POST.get("confirm_name", "").strip() != account.name:
            error = _("Type the customer's name exactly to confirm.")
        else:
            try:
                ending = relationships.end_relationship(
                    account, message=request.POST.get("message", ""), actor=request.user
                )
            except tickets.TicketError as exc:
                error = str(exc)
            else:
                messages.success(
                    request,
                    ngettext(
                        "The account is closed; %(n)s subscription ends with its paid period.",
                        "The account is closed; %(n)s subscriptions end with their paid period.",
                        ending,
                    )
                    % {"n": ending},
                )
                return redirect("support:workload")
    return render(
        request,
        "support/staff/end_relationship.html",
        {
            "account": account,
            "error": error,
            "live": account.subscriptions.filter(
                status__in=["active", "trialing", "past_due"]
            ).count(),
        },
        status=400 if error else 200,
    )


# -- configuration --------------------------------------------------------------------------

CONFIG = {
    "departments": (Department, DepartmentForm, gettext_lazy("Departments")),
    "sla": (SlaPolicy, SlaPolicyForm, gettext_lazy("SLA policies")),
    "terms": (SupportTerms, SupportTermsForm, gettext_lazy("Support terms per plan")),
    "canned": (CannedReply, CannedReplyForm, gettext_lazy("Canned replies")),
    "kb-categories": (KbCategory, KbCategoryForm, gettext_lazy("Knowledge base categories")),
    "articles": (Article, ArticleForm, gettext_lazy("Articles")),
}


def _stamp(kind: str, row) -> None:
    if kind == "articles":
        row.updated_at = timezone.now()


_PAGES = ConfigPages(app="support", registry=CONFIG, before_save=_stamp)


@staff_required
def config_list(request: HttpRequest, kind: str) -> HttpResponse:
    return _PAGES.list(request, kind)


@staff_required
def config_edit(request: HttpRequest, kind: str, pk: int | None = None) -> HttpResponse:
    if kind in ("departments", "sla", "terms") and not request.user.is_superuser:
        raise Http404  # the owner sets the service levels; staff write replies and articles
    return _PAGES.edit(request, kind, pk)
