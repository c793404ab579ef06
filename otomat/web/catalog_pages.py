"""The product page and what it offers: the plans it is sold on (billing), "Try it" on the
emulator (a trial instance) and the live check of one settings field (which also asks whether
another instance already uses the bot). They show several domains, so they are composed here,
above catalog, instances and billing; their URLs keep the catalog's names (``catalog:detail``,
``catalog:try``, ``catalog:check_field``; see ``otomat.web.catalog_urls``)."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from otomat.billing.subscriptions import plans_for
from otomat.catalog import i18n
from otomat.catalog.errors import CheckError
from otomat.catalog.schema_form import bot_id_of, check_value, field_specs
from otomat.catalog.values import is_multiline, text_problem
from otomat.catalog.views import product_context, visible_product
from otomat.instances.models import Instance
from otomat.instances.sandboxes import start_trial
from otomat.instances.services import InstanceError, bot_in_use
from otomat.lib.emulator import chat_url


def detail(request: HttpRequest, slug: str) -> HttpResponse:
    """The product page: the catalog's view of the product with the plans the reader may
    order it on."""
    context = product_context(request, slug)
    account = request.user.account if request.user.is_authenticated else None
    context["plans"] = plans_for(context["product"], account)
    i18n.remember_plan_texts(context["plans"], context["latest"])  # no query per plan's name
    return render(request, "catalog/detail.html", context)


@require_POST
def try_it(request: HttpRequest, slug: str) -> HttpResponse:
    """Anyone: start (or reuse, one per browser session) a short trial on the emulator and open
    its web chat."""
    product = visible_product(request, slug)
    version = product.latest_version()
    if version is None:
        raise Http404
    trials = request.session.get("trials", {})
    existing = (
        Instance.objects.filter(pk=trials.get(str(version.pk)), kind=Instance.Kind.TRIAL)
        .exclude(state=Instance.State.TERMINATED)
        .first()
        if trials.get(str(version.pk))
        else None
    )
    if existing is None:
        try:
            existing = start_trial(
                version, actor=request.user if request.user.is_authenticated else None
            )
        except InstanceError as exc:
            messages.error(request, str(exc))
            return redirect("catalog:detail", slug=slug)
        trials[str(version.pk)] = str(existing.pk)
        request.session["trials"] = trials
    return redirect(trial_chat_url(chat_url(existing.emulator_bot)))


def trial_chat_url(chat: str) -> str:
    """The emulator's chat with a trial's bot, opened in the visitor's language. What to say
    first and the way back to the product come from the bot's welcome, which the platform set
    when it made the trial (never from the link, which anyone could write)."""
    return f"{chat}?{urlencode({'lang': get_language() or settings.LANGUAGE_CODE})}"


@require_POST
def check_field(request: HttpRequest, slug: str, field: str) -> HttpResponse:
    """HTMX: run the live check of one field of the product's latest version.

    Answers 200 with a small fragment (the confirmation or the error) so htmx swaps it in; the
    submitted value is never echoed. Logged-in people only: the check calls a remote service.
    """
    if not request.user.is_authenticated:
        return HttpResponse(_("Log in to check this value."), status=403)
    product = visible_product(request, slug)
    version = product.latest_version()
    spec = {s.name: s for s in field_specs(version.config_schema)}.get(field) if version else None
    if spec is None or not spec.check:
        raise Http404
    raw = _posted_value(request, field).strip()
    # A list field (one item per line) is checked item by item.
    value: str | list[str] = (
        [line.strip() for line in raw.splitlines() if line.strip()][:20]
        if spec.kind == "lines"
        else raw
    )
    context: dict[str, Any] = {"ok": None, "message": ""}
    problem = next(
        filter(
            None,
            (
                text_problem(item, multiline=is_multiline(spec.schema))
                for item in ([value] if isinstance(value, str) else value)
            ),
        ),
        None,
    )
    if problem:
        # What the form refuses on submit is refused while typing, before any remote call.
        context = {"ok": False, "message": problem}
    elif value:
        try:
            message = check_value(spec.check, value, source_dir=version.source_path)
            context = {"ok": True, "message": message}
        except CheckError as exc:
            context = {"ok": False, "message": str(exc)}
    if context["ok"] and spec.check == "telegram_token" and isinstance(value, str):
        context = _bot_taken(request, value) or context
    return render(request, "catalog/_check_result.html", context)


def _bot_taken(request: HttpRequest, token: str) -> dict[str, Any] | None:
    """A real bot may still be taken: another live instance already uses it (the same refusal
    the form gives on submit). The edit form names its own instance in ``_instance``."""
    account = request.user.account
    bot_id = bot_id_of(token)
    if account is None or not bot_id:
        return None
    try:
        own = uuid.UUID(request.POST.get("_instance", ""))
    except ValueError:
        own = None
    if own is not None:  # only one of the person's own instances can be left out
        own = Instance.objects.filter(pk=own, account=account).values_list("pk", flat=True).first()
    refusal = bot_in_use(bot_id, account=account, instance_id=own)
    return {"ok": False, "message": refusal} if refusal else None


def _posted_value(request: HttpRequest, field: str) -> str:
    # hx-post sends the enclosing form, where the field may carry a form prefix ("cfg-field").
    if field in request.POST:
        return request.POST[field]
    for key in request.POST:
        if key.endswith(f"-{field}"):
            return request.POST[key]
    return ""
