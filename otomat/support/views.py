"""Support pages for customers (and the ticket page staff share): tickets, suggestions while
typing, the knowledge base, announcements, known issues, the inbound email webhook. Thin:
scope, parse, call a service, render. Another account's ticket, attachment or draft is a 404."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Prefetch
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from otomat.billing.invoicing import BillingError
from otomat.catalog.models import Product
from otomat.instances.models import Instance
from otomat.support import announcements, entitlements, inbound, kb, people, quotes, tickets
from otomat.support.forms import NewTicketForm, ReplyForm
from otomat.support.models import (
    AnnouncementReceipt,
    Article,
    Attachment,
    KbCategory,
    ProductBug,
    Quote,
    Ticket,
    TicketMessage,
)


def scoped_tickets(request: HttpRequest):
    qs = Ticket.objects.select_related("account", "instance", "requester", "assignee", "department")
    if request.user.is_staff:
        return qs
    account = request.user.account
    return qs.filter(account=account) if account else qs.none()


def uploads_from(files) -> list[tickets.Upload]:
    return [tickets.Upload(f.name, f.read()) for f in files or []]


@login_required
def ticket_list(request: HttpRequest) -> HttpResponse:
    if request.user.is_staff and request.user.account is None:
        return redirect("support:workload")
    qs = scoped_tickets(request).exclude(status=Ticket.Status.MERGED)
    state = request.GET.get("state", "open")
    if state == "open":
        qs = qs.filter(
            status__in=[Ticket.Status.OPEN, Ticket.Status.PENDING, Ticket.Status.AWAITING_PAYMENT]
        )
    elif state == "done":
        qs = qs.filter(status__in=[Ticket.Status.RESOLVED, Ticket.Status.CLOSED])
    page = Paginator(qs.order_by("-updated_at", "-id"), 25).get_page(request.GET.get("page"))
    return render(request, "support/list.html", {"page": page, "state": state})


@login_required
def new_ticket(request: HttpRequest) -> HttpResponse:
    account = request.user.account
    if account is None:
        raise Http404
    instances = Instance.objects.filter(account=account, kind=Instance.Kind.CUSTOMER).exclude(
        state=Instance.State.TERMINATED
    )
    initial = {}
    if request.GET.get("instance"):
        initial["instance"] = (
            instances.filter(pk=request.GET["instance"]).first()
            if _uuid(request.GET["instance"])
            else None
        )
    form = NewTicketForm(
        request.POST or None, request.FILES or None, instances=instances, initial=initial
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            ticket = tickets.open_ticket(
                account=account,
                requester=request.user,
                subject=data["subject"],
                body=data["body"],
                instance=data["instance"],
                kind=data["kind"],
                priority=data["priority"],
                uploads=uploads_from(data["files"]),
            )
        except tickets.TicketError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, _("Ticket %(number)s opened.") % {"number": ticket.number})
            return redirect("support:ticket", number=ticket.number)
    entitlement = None
    chosen = form["instance"].value()
    if chosen and _uuid(str(chosen)):
        instance = instances.filter(pk=chosen).first()
        entitlement = entitlements.for_instance(instance) if instance else None
    return render(
        request,
        "support/new.html",
        {
            "form": form,
            "entitlement": entitlement,
            "closed": account.status != account.Status.ACTIVE,
        },
        status=400 if form.errors else 200,
    )


def _uuid(value: str) -> bool:
    import uuid

    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


@login_required
def entitlement_partial(request: HttpRequest) -> HttpResponse:
    """HTMX: what the chosen instance's plan includes (only the customer's own instances)."""
    chosen = request.GET.get("instance", "")
    instance = None
    if _uuid(chosen) and request.user.account is not None:
        instance = Instance.objects.filter(pk=chosen, account=request.user.account).first()
    entitlement = entitlements.for_instance(instance) if instance else None
    return render(request, "support/_entitlement.html", {"entitlement": entitlement})


@login_required
def suggest(request: HttpRequest) -> HttpResponse:
    """HTMX, while a customer types the subject: matching articles and their own earlier
    tickets (with the answer they got)."""
    query = request.GET.get("subject", "")[:200]
    found = kb.suggestions(query, account=request.user.account, language=kb.reader_language())
    return render(request, "support/_suggestions.html", found)


def _ticket_context(
    request: HttpRequest, ticket: Ticket, reply_form: ReplyForm | None = None
) -> dict:
    staff = request.user.is_staff
    visible = ticket.messages.select_related("author").prefetch_related("attachments")
    if not staff:
        visible = visible.exclude(kind=TicketMessage.Kind.NOTE)
    context = {
        "ticket": ticket,
        "messages_": people.sign(visible),
        "entitlement": entitlements.for_instance(ticket.instance) if ticket.instance else None,
        "quotes": ticket.quotes.select_related("invoice"),
        "reply_form": reply_form or ReplyForm(),
        "history": tickets.history_for(ticket.account, exclude=ticket, limit=10),
        "events": ticket.events.select_related("actor") if staff else [],
    }
    if staff:
        from otomat.support.views_staff import staff_ticket_context

        context |= staff_ticket_context(ticket)
    return context


@login_required
def ticket_detail(request: HttpRequest, number: str) -> HttpResponse:
    ticket = get_object_or_404(scoped_tickets(request), number=number)
    if ticket.status == Ticket.Status.MERGED and ticket.merged_into_id:
        return redirect("support:ticket", number=ticket.merged_into.number)
    return render(request, "support/ticket.html", _ticket_context(request, ticket))


@login_required
@require_POST
def reply(request: HttpRequest, number: str) -> HttpResponse:
    ticket = get_object_or_404(scoped_tickets(request), number=number)
    form = ReplyForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            if request.user.is_staff:
                status = request.POST.get("status") or None
                if status not in (None, Ticket.Status.OPEN, Ticket.Status.RESOLVED):
                    status = None  # the quote flow sets "awaiting payment", not this form
                tickets.staff_reply(
                    ticket,
                    staff=request.user,
                    body=form.cleaned_data["body"],
                    internal=request.POST.get("internal") == "1",
                    status=status,
                    uploads=uploads_from(form.cleaned_data["files"]),
                )
                target = ticket
            else:
                target = tickets.customer_message(
                    ticket,
                    author=request.user,
                    body=form.cleaned_data["body"],
                    uploads=uploads_from(form.cleaned_data["files"]),
                )
        except tickets.TicketError as exc:
            form.add_error(None, str(exc))
        else:
            if target.pk != ticket.pk:
                messages.info(
                    request,
                    _("That ticket was closed, so %(number)s was opened as a follow-up.")
                    % {"number": target.number},
                )
            return redirect("support:ticket", number=target.number)
    ticket.refresh_from_db()
    return render(
        request, "support/ticket.html", _ticket_context(request, ticket, form), status=400
    )


@login_required
@require_POST
def set_status(request: HttpRequest, number: str) -> HttpResponse:
    ticket = get_object_or_404(scoped_tickets(request), number=number)
    try:
        tickets.set_status(ticket, request.POST.get("status", ""), actor=request.user)
    except tickets.TicketError as exc:
        messages.error(request, str(exc))
    return redirect("support:ticket", number=ticket.number)


@login_required
@require_POST
def rate(request: HttpRequest, number: str) -> HttpResponse:
    ticket = get_object_or_404(scoped_tickets(request), number=number)
    raw = request.POST.get("rating", "")
    try:
        tickets.rate(
            ticket,
            user=request.user,
            rating=int(raw) if raw.isdigit() else 0,
            comment=request.POST.get("comment", ""),
        )
    except tickets.TicketError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("Thank you for rating the answer."))
    return redirect("support:ticket", number=ticket.number)


@login_required
@require_POST
def quote_decision(request: HttpRequest, quote_id: int) -> HttpResponse:
    quote = get_object_or_404(Quote.objects.select_related("ticket"), pk=quote_id)
    if quote.ticket.account != request.user.account and not request.user.is_staff:
        raise Http404
    try:
        if request.POST.get("decision") == "accept":
            invoice = quotes.accept_quote(quote, user=request.user)
            if invoice.status == invoice.Status.OPEN:
                return redirect("billing:pay", token=invoice.token)
            messages.success(request, _("Paid from your credit; the work continues."))
        else:
            quotes.decline_quote(quote, user=request.user)
            messages.success(request, _("The quote was declined."))
    except (tickets.TicketError, BillingError) as exc:
        messages.error(request, str(exc))
    return redirect("support:ticket", number=quote.ticket.number)


@login_required
def attachment(request: HttpRequest, attachment_id: int) -> HttpResponse:
    item = get_object_or_404(Attachment.objects.select_related("message__ticket"), pk=attachment_id)
    ticket = item.message.ticket
    if not request.user.is_staff and (
        ticket.account != request.user.account or item.message.kind == TicketMessage.Kind.NOTE
    ):
        raise Http404
    response = FileResponse(item.file.open("rb"), content_type=item.content_type)
    # Always a download, never rendered in our origin (an uploaded file cannot run as a page).
    response["Content-Disposition"] = f'attachment; filename="{item.filename.replace(chr(34), "")}"'
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


# -- knowledge base ---------------------------------------------------------------------------


def kb_index(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()[:200]
    language = kb.reader_language()
    results = kb.search(query, limit=20, language=language) if query else []
    shown = Article.objects.all()
    if not (request.user.is_authenticated and request.user.is_staff):
        shown = shown.filter(status=Article.Status.PUBLISHED)
    shown = kb.for_reader(shown, language)
    categories = KbCategory.objects.prefetch_related(Prefetch("articles", queryset=shown))
    for category in categories:
        category.shown = kb.reader_first(list(category.articles.all()), language)
    return render(
        request,
        "support/kb_index.html",
        {"q": query, "results": results, "categories": categories},
    )


def kb_article(request: HttpRequest, slug: str) -> HttpResponse:
    qs = Article.objects.select_related("category")
    if not (request.user.is_authenticated and request.user.is_staff):
        qs = qs.filter(status=Article.Status.PUBLISHED)  # drafts are staff's only
    article = get_object_or_404(qs, slug=slug)
    if request.method == "POST":
        if not request.session.session_key:
            request.session.save()
        voter = (
            f"user:{request.user.pk}"
            if request.user.is_authenticated
            else f"session:{request.session.session_key}"
        )
        if kb.vote(article, voter=voter, helpful=request.POST.get("helpful") == "yes"):
            messages.success(request, _("Thank you for telling us."))
        return redirect("support:kb_article", slug=article.slug)
    language = kb.reader_language()
    related = [
        a
        for a in kb.search(article.title, limit=5, language=language)
        if a.pk != article.pk
        and not (article.translation_key and a.translation_key == article.translation_key)
    ][:3]
    translations = (
        Article.objects.filter(
            translation_key=article.translation_key, status=Article.Status.PUBLISHED
        )
        .exclude(pk=article.pk)
        .order_by("language")
        if article.translation_key
        else Article.objects.none()
    )
    return render(
        request,
        "support/kb_article.html",
        {"article": article, "related": related, "translations": translations},
    )


# -- announcements and known issues -----------------------------------------------------------


@login_required
def announcement_list(request: HttpRequest) -> HttpResponse:
    receipts = AnnouncementReceipt.objects.filter(user=request.user).select_related("announcement")
    page = Paginator(receipts.order_by("-announcement__sent_at"), 20).get_page(
        request.GET.get("page")
    )
    return render(request, "support/announcements.html", {"page": page})


def announcement_read(request: HttpRequest, token: str) -> HttpResponse:
    """The read link in the email (works without logging in: the token is the receipt)."""
    receipt = get_object_or_404(
        AnnouncementReceipt.objects.select_related("announcement"), token=token
    )
    if (
        request.user.is_authenticated
        and not request.user.is_staff
        and receipt.user_id != request.user.pk
    ):
        raise Http404
    announcements.mark_read(receipt)
    return render(request, "support/announcement.html", {"announcement": receipt.announcement})


def known_issues(request: HttpRequest, slug: str) -> HttpResponse:
    product = get_object_or_404(Product, slug=slug, is_listed=True)
    bugs = ProductBug.objects.filter(product=product, is_public=True).select_related("fixed_in")
    open_bugs = bugs.exclude(status__in=[ProductBug.Status.RELEASED, ProductBug.Status.WONT_FIX])
    fixed = bugs.filter(status=ProductBug.Status.RELEASED).order_by("-released_at")[:20]
    return render(
        request,
        "support/known_issues.html",
        {"product": product, "open_bugs": open_bugs, "fixed": fixed},
    )


# -- inbound email --------------------------------------------------------------------------


@csrf_exempt
@require_POST
def inbound_email(request: HttpRequest) -> HttpResponse:
    """A mail provider posts a raw message (RFC 822) here, signed with the shared secret:
    ``X-Otomat-Timestamp`` and ``X-Otomat-Signature: sha256=<hex HMAC of "timestamp.body">``."""
    # Read the stream ourselves: the global request-body limit (2 MB) is for forms, while an
    # email with attachments may be up to MAX_RAW_BYTES.
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > inbound.MAX_RAW_BYTES:
        return JsonResponse({"detail": "message too large"}, status=413)
    body = request.read(inbound.MAX_RAW_BYTES + 1)
    status, detail = inbound.receive_webhook(
        body=body,
        timestamp=request.headers.get("X-Otomat-Timestamp", ""),
        signature=request.headers.get("X-Otomat-Signature", ""),
    )
    return JsonResponse({"detail": detail}, status=status)


@login_required
def export_account(request: HttpRequest) -> HttpResponse:
    """The customer's data to take with them (also after the seller closed the account)."""
    from otomat.accounts.services import record_audit
    from otomat.support.relationships import export_account as build

    account = request.user.account
    if account is None:
        raise Http404
    record_audit("account.exported", actor=request.user, account=account, target=account)
    response = HttpResponse(build(account), content_type="application/zip")
    response["Content-Disposition"] = 'attachment; filename="otomat-account-export.zip"'
    return response
