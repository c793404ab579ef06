"""Board pages. Clients: their projects, the board of one (columns that fold into a list on a
phone), a card (answer, accept on staging, ask for a change). Staff: the workshop review, the
same pages with editing, time entries, release scheduling, a project from an offer or by hand,
and the draft product of a finished one. Thin: scope, parse, call a service, render. Another
account's project or card is a 404."""

from __future__ import annotations

from datetime import date

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from otomat.accounts.models import Account, User
from otomat.billing.money import Money
from otomat.billing.views_staff import staff_required
from otomat.projects.board import products, releases, revisions, services, workshop
from otomat.projects.board.models import Card, CardEvent, Project, Release, RevisionRound
from otomat.projects.board.services import BoardError

COLUMNS = [
    (Card.Status.TODO, Card.Status.IN_PROGRESS),
    (Card.Status.WAITING_CLIENT, Card.Status.WAITING_US, Card.Status.BLOCKED),
    (Card.Status.STAGING, Card.Status.ACCEPTED),
    (Card.Status.RELEASED,),
]


def scoped_projects(request: HttpRequest):
    qs = Project.objects.select_related("account", "offer")
    if request.user.is_staff:
        return qs
    account = request.user.account
    return qs.filter(account=account) if account else qs.none()


def scoped_cards(request: HttpRequest):
    qs = Card.objects.select_related("project__account", "milestone", "assignee", "accepted_by")
    if request.user.is_staff:
        return qs
    account = request.user.account
    return qs.filter(project__account=account) if account else qs.none()


def _int(value, default=None):
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _date(value) -> date | None:
    try:
        return date.fromisoformat((value or "").strip())
    except ValueError:
        return None


def _done(request, card_or_project, message: str | None = None):
    if message:
        messages.success(request, message)
    if isinstance(card_or_project, Card):
        return redirect("board:card", card_or_project.pk)
    return redirect("board:project", card_or_project.pk)


def _refused(request, exc: BoardError, target):
    messages.error(request, str(exc))
    return _done(request, target)


# -- client and shared pages -------------------------------------------------------------------


@login_required
def project_list(request: HttpRequest) -> HttpResponse:
    projects = scoped_projects(request).order_by("status", "-created_at")
    if request.user.is_staff and request.GET.get("account"):
        projects = projects.filter(account_id=_int(request.GET["account"], 0))
    rows = [
        {
            "project": p,
            "open": p.cards.exclude(status=Card.Status.RELEASED).count(),
            "yours": p.cards.filter(whose_move="client").count(),
        }
        for p in projects[:200]
    ]
    return render(request, "board/list.html", {"rows": rows})


@login_required
def project_detail(request: HttpRequest, project_id: int) -> HttpResponse:
    project = get_object_or_404(scoped_projects(request), pk=project_id)
    cards = list(project.cards.select_related("milestone", "assignee").order_by("position", "pk"))
    view = request.GET.get("view", "columns")
    columns = [
        {
            "statuses": [(s, Card.Status(s).label) for s in group],
            "cards": [c for c in cards if c.status in group],
        }
        for group in COLUMNS
    ]
    context = {
        "project": project,
        "cards": cards,
        "columns": columns,
        "view": "list" if view == "list" else "columns",
        "milestones": project.milestones.all(),
        "time": services.time_summary(project),
        "revisions": revisions.usage_text(project),
        "releases": project.releases.exclude(status=Release.Status.CANCELLED)[:10],
        "is_staff": request.user.is_staff,
    }
    if request.user.is_staff:
        context["staff_people"] = User.objects.filter(is_staff=True, is_active=True)
    return render(request, "board/project.html", context)


@login_required
def card_detail(request: HttpRequest, card_id: int) -> HttpResponse:
    card = get_object_or_404(scoped_cards(request), pk=card_id)
    events = card.events.select_related("author")
    if not request.user.is_staff:
        events = events.exclude(kind=CardEvent.Kind.NOTE)
    context = {
        "card": card,
        "project": card.project,
        "events": events,
        "is_staff": request.user.is_staff,
        "is_client": services.is_client_of(request.user, card.project),
        "changeable": card.status in revisions.CHANGEABLE,
        "revisions": revisions.usage_text(card.project),
        "revision": RevisionRound.objects.filter(card=card).select_related("ticket").first(),
        "statuses": Card.Status.choices,
        "reasons": Card.BlockedReason.choices,
    }
    if request.user.is_staff:
        context["time_entries"] = card.time_entries.select_related("staff")
        context["time"] = services.time_summary(card.project)
        context["staff_people"] = User.objects.filter(is_staff=True, is_active=True)
    template = (
        "board/_events.html" if request.htmx and request.GET.get("part") else "board/card.html"
    )
    return render(request, template, context)


@login_required
@require_POST
def card_comment(request: HttpRequest, card_id: int) -> HttpResponse:
    card = get_object_or_404(scoped_cards(request), pk=card_id)
    internal = request.user.is_staff and request.POST.get("internal") == "1"
    try:
        services.comment(
            card, author=request.user, body=request.POST.get("body", ""), internal=internal
        )
    except BoardError as exc:
        if request.htmx:
            return HttpResponse(str(exc), status=400)
        return _refused(request, exc, card)
    if request.htmx:
        events = card.events.select_related("author")
        if not request.user.is_staff:
            events = events.exclude(kind=CardEvent.Kind.NOTE)
        return render(request, "board/_events.html", {"card": card, "events": events})
    return _done(request, card, _("Comment added."))


@login_required
@require_POST
def card_accept(request: HttpRequest, card_id: int) -> HttpResponse:
    card = get_object_or_404(scoped_cards(request), pk=card_id)
    try:
        services.accept_on_staging(card, user=request.user)
    except BoardError as exc:
        return _refused(request, exc, card)
    return _done(request, card, _("Accepted. We will schedule its release."))


@login_required
@require_POST
def card_change(request: HttpRequest, card_id: int) -> HttpResponse:
    card = get_object_or_404(scoped_cards(request), pk=card_id)
    try:
        revision = revisions.request_change(
            card, user=request.user, body=request.POST.get("body", "")
        )
    except BoardError as exc:
        return _refused(request, exc, card)
    if revision.within_quota:
        project = Project.objects.get(pk=card.project_id)
        text = _("Change requested (%(usage)s).") % {"usage": revisions.usage_text(project)}
    else:
        text = _(
            "Your included revision rounds are used: we will answer with a quote on ticket %(n)s."
        ) % {"n": revision.ticket.number}
    return _done(request, revision.card, text)


# -- staff pages -------------------------------------------------------------------------------


@staff_required
def workshop_view(request: HttpRequest) -> HttpResponse:
    sort = request.GET.get("sort", "since")
    sort = sort if sort in workshop.SORTS else "since"
    account = None
    if request.GET.get("account"):
        account = get_object_or_404(Account, pk=_int(request.GET["account"], 0))
    rows = workshop.review(sort=sort, account=account)
    return render(
        request,
        "board/workshop.html",
        {"rows": rows, "totals": workshop.totals(rows), "sort": sort, "account": account},
    )


@staff_required
def project_new(request: HttpRequest) -> HttpResponse:
    accounts = Account.objects.filter(status=Account.Status.ACTIVE).order_by("name")
    if request.method == "POST":
        account = accounts.filter(pk=_int(request.POST.get("account"), 0)).first()
        quota = _int(request.POST.get("revision_quota"), -1)
        try:
            project = services.start_project(
                account=account,
                title=request.POST.get("title", ""),
                description=request.POST.get("description", ""),
                revision_quota=quota,
                hours_min=request.POST.get("hours_min") or None,
                hours_max=request.POST.get("hours_max") or None,
                milestones=request.POST.get("milestones", "").splitlines(),
                actor=request.user,
            )
        except BoardError as exc:
            messages.error(request, str(exc))
            return render(
                request, "board/new.html", {"accounts": accounts, "data": request.POST}, status=400
            )
        return _done(request, project, _("Project started."))
    return render(request, "board/new.html", {"accounts": accounts, "data": {}})


@staff_required
@require_POST
def project_from_offer(request: HttpRequest, offer_id: int) -> HttpResponse:
    from otomat.projects.offers.models import Offer

    offer = get_object_or_404(Offer, pk=offer_id)
    try:
        project = services.start_project_from_offer(offer, actor=request.user)
    except BoardError as exc:
        messages.error(request, str(exc))
        return redirect("board:list")
    return _done(request, project, _("The board of the offer is ready."))


@staff_required
@require_POST
def card_add(request: HttpRequest, project_id: int) -> HttpResponse:
    project = get_object_or_404(Project, pk=project_id)
    try:
        services.add_card(
            project,
            title=request.POST.get("title", ""),
            description=request.POST.get("description", ""),
            milestone=_int(request.POST.get("milestone"))
            if request.POST.get("milestone")
            else None,
            assignee=_int(request.POST.get("assignee")) if request.POST.get("assignee") else None,
            actor=request.user,
        )
    except BoardError as exc:
        return _refused(request, exc, project)
    return _done(request, project, _("Card added."))


@staff_required
@require_POST
def milestone_add(request: HttpRequest, project_id: int) -> HttpResponse:
    project = get_object_or_404(Project, pk=project_id)
    try:
        services.add_milestone(project, title=request.POST.get("title", ""), actor=request.user)
    except BoardError as exc:
        return _refused(request, exc, project)
    return _done(request, project, _("Milestone added."))


@staff_required
@require_POST
def card_edit(request: HttpRequest, card_id: int) -> HttpResponse:
    card = get_object_or_404(Card, pk=card_id)
    try:
        services.update_card(
            card,
            actor=request.user,
            title=request.POST.get("title", ""),
            description=request.POST.get("description", ""),
            milestone=_int(request.POST.get("milestone"))
            if request.POST.get("milestone")
            else None,
            assignee=_int(request.POST.get("assignee")) if request.POST.get("assignee") else None,
            staging_url=request.POST.get("staging_url", ""),
        )
    except BoardError as exc:
        return _refused(request, exc, card)
    return _done(request, card, _("Card saved."))


@staff_required
@require_POST
def card_status(request: HttpRequest, card_id: int) -> HttpResponse:
    card = get_object_or_404(Card, pk=card_id)
    try:
        services.set_status(
            card,
            request.POST.get("status", ""),
            reason=request.POST.get("reason", ""),
            note=request.POST.get("note", ""),
            actor=request.user,
        )
    except BoardError as exc:
        return _refused(request, exc, card)
    if request.POST.get("next") == "board":
        return _done(request, card.project, _("Status changed."))
    return _done(request, card, _("Status changed."))


@staff_required
@require_POST
def card_move(request: HttpRequest, card_id: int) -> HttpResponse:
    card = get_object_or_404(Card, pk=card_id)
    position = _int(request.POST.get("position"), -1)
    try:
        services.move_card(card, position=position, actor=request.user)
    except BoardError as exc:
        return _refused(request, exc, card.project)
    return _done(request, card.project)


@staff_required
@require_POST
def card_time(request: HttpRequest, card_id: int) -> HttpResponse:
    card = get_object_or_404(Card, pk=card_id)
    hours, minutes = (
        _int(request.POST.get("hours") or 0, -1),
        _int(request.POST.get("minutes") or 0, -1),
    )
    day = _date(request.POST.get("date")) if request.POST.get("date") else None
    try:
        if hours < 0 or minutes < 0 or (request.POST.get("date") and day is None):
            raise BoardError(_("Give the time as hours and minutes, and the date as YYYY-MM-DD."))
        services.log_time(
            card,
            staff=request.user,
            minutes=hours * 60 + minutes,
            day=day,
            note=request.POST.get("note", ""),
        )
    except BoardError as exc:
        return _refused(request, exc, card)
    return _done(request, card, _("Time logged."))


@staff_required
@require_POST
def revision_quote(request: HttpRequest, card_id: int) -> HttpResponse:
    card = get_object_or_404(Card, pk=card_id)
    revision = get_object_or_404(RevisionRound, card=card)
    try:
        price = Money.of(request.POST.get("price", "").strip() or "0", card.project.currency)
    except (ValueError, TypeError, ArithmeticError):
        messages.error(request, _("Write the price as a number, e.g. 1500 or 1500.50."))
        return redirect("board:card", card.pk)
    try:
        revisions.send_change_quote(
            revision,
            staff=request.user,
            price=price,
            days=_int(request.POST.get("days"), 0),
            description=request.POST.get("description", ""),
        )
    except BoardError as exc:
        return _refused(request, exc, card)
    return _done(request, card, _("Quote sent on ticket %(n)s.") % {"n": revision.ticket.number})


@staff_required
def release_new(request: HttpRequest, project_id: int) -> HttpResponse:
    project = get_object_or_404(Project, pk=project_id)
    ready = project.cards.filter(status=Card.Status.ACCEPTED).exclude(
        releases__status=Release.Status.SCHEDULED
    )
    if request.method == "POST":
        day = _date(request.POST.get("scheduled_for"))
        try:
            if day is None:
                raise BoardError(_("Choose the release date."))
            releases.schedule_release(
                project,
                scheduled_for=day,
                cards=request.POST.getlist("cards") or None,
                note=request.POST.get("note", ""),
                actor=request.user,
            )
        except BoardError as exc:
            messages.error(request, str(exc))
            return render(
                request, "board/release.html", {"project": project, "ready": ready}, status=400
            )
        return _done(request, project, _("Release scheduled; the client has been told."))
    return render(request, "board/release.html", {"project": project, "ready": ready})


@staff_required
@require_POST
def release_action(request: HttpRequest, release_id: int, action: str) -> HttpResponse:
    release = get_object_or_404(Release, pk=release_id)
    try:
        if action == "released":
            releases.mark_released(release, actor=request.user)
        elif action == "cancel":
            releases.cancel_release(release, actor=request.user)
        else:
            raise Http404
    except BoardError as exc:
        return _refused(request, exc, release.project)
    return _done(request, release.project, _("Release updated."))


@staff_required
@require_POST
def project_finish(request: HttpRequest, project_id: int) -> HttpResponse:
    project = get_object_or_404(Project, pk=project_id)
    try:
        services.finish_project(project, actor=request.user)
    except BoardError as exc:
        return _refused(request, exc, project)
    return _done(request, project, _("Project finished."))


@staff_required
@require_POST
def project_product(request: HttpRequest, project_id: int) -> HttpResponse:
    project = get_object_or_404(Project, pk=project_id)
    try:
        product = products.product_from_project(project, actor=request.user)
    except BoardError as exc:
        return _refused(request, exc, project)
    return _done(
        request,
        project,
        _("Draft product “%(name)s” created (unlisted): import a version to sell it.")
        % {"name": product.name},
    )
