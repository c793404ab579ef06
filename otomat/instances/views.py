"""Customer and staff pages for instances. Thin: scope, parse, call a service, render."""

from __future__ import annotations

import re

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from otomat.accounts.services import record_audit
from otomat.catalog import schema_form
from otomat.catalog.models import Product
from otomat.instances import sandboxes, services
from otomat.instances.exports import ExportUnavailable, build_export
from otomat.instances.models import Instance
from otomat.lib import emulator
from otomat.runtime.logs import tail

ACTIONS = {
    "start": services.start_instance,
    "stop": services.stop_instance,
    "restart": services.restart_instance,
}


def scoped_instances(request: HttpRequest):
    """Every instance the person may see: staff all, a customer their account's, others none."""
    qs = Instance.objects.select_related("version__product", "account")
    if request.user.is_staff:
        return qs
    account = request.user.account
    if account is None:
        return qs.none()
    return qs.filter(account=account)


def get_instance(request: HttpRequest, instance_id) -> Instance:
    """The instance if the person may see it; 404 otherwise (never 403: no existence oracle)."""
    return get_object_or_404(scoped_instances(request), pk=instance_id)


@login_required
def instance_list(request: HttpRequest) -> HttpResponse:
    instances = scoped_instances(request)
    if request.user.is_staff and request.user.account is None:
        return redirect("instances:manage")
    instances = instances.filter(account=request.user.account).exclude(
        state=Instance.State.TERMINATED
    )
    return render(request, "instances/list.html", {"instances": instances})


@login_required
def manage(request: HttpRequest) -> HttpResponse:
    """Staff: every instance of every customer, filtered by state, product and customer."""
    if not request.user.is_staff:
        raise Http404
    instances = scoped_instances(request)
    state = request.GET.get("state", "")
    product = request.GET.get("product", "")
    query = request.GET.get("q", "").strip()
    if state in Instance.State.values:
        instances = instances.filter(state=state)
    if product:
        instances = instances.filter(version__product__slug=product)
    if query:
        instances = instances.filter(account__name__icontains=query) | instances.filter(
            name__icontains=query
        )
    # Newest first with the id as tie-break: the instances_created index, pages that do not overlap.
    page = Paginator(instances.order_by("-created_at", "-id"), 25).get_page(request.GET.get("page"))
    return render(
        request,
        "instances/manage.html",
        {
            "page": page,
            "states": Instance.State.choices,
            "products": Product.objects.all(),
            "state": state,
            "product": product,
            "q": query,
        },
    )


@login_required
def install(request: HttpRequest, slug: str) -> HttpResponse:
    product = get_object_or_404(Product, slug=slug, is_listed=True)
    version = product.latest_version()
    account = request.user.account
    if version is None:
        raise Http404
    if account is None:
        messages.error(request, _("Staff accounts cannot install; log in as a customer."))
        return redirect("catalog:detail", slug=slug)
    form_class = schema_form.build_form_class(
        version.config_schema, product_slug=product.slug, source_dir=version.source_path
    )
    from otomat.billing import subscriptions
    from otomat.billing.invoicing import BillingError

    plans = subscriptions.plans_for(product, account)
    form = form_class(request.POST or None)
    name = request.POST.get("instance_name", "").strip() if request.method == "POST" else ""
    coupon = request.POST.get("coupon", "").strip() if request.method == "POST" else ""
    chosen = next((p for p in plans if str(p.pk) == request.POST.get("plan", "")), None)
    if request.method == "POST" and plans and chosen is None:
        form.add_error(None, _("Choose a plan."))
    if request.method == "POST" and form.is_valid():
        config = form.config
        try:
            if plans:
                instance, invoice = subscriptions.place_order(
                    account=account,
                    version=version,
                    plan=chosen,
                    name=name,
                    config=config,
                    actor=request.user,
                    coupon_code=coupon,
                )
            else:
                instance, invoice = (
                    services.install_instance(
                        account=account,
                        version=version,
                        name=name,
                        config=config,
                        actor=request.user,
                    ),
                    None,
                )
        except schema_form.ConfigError as exc:
            schema_form.add_config_errors(form, exc)
        except (services.InstanceError, BillingError) as exc:
            form.add_error(None, str(exc))
        else:
            if invoice is not None and invoice.status == invoice.Status.OPEN:
                messages.success(
                    request,
                    _("Ordered. %(name)s starts as soon as it is paid.")
                    % {"name": name or product.name},
                )
                return redirect("billing:pay", token=invoice.token)
            messages.success(request, _("%(name)s is being installed.") % {"name": instance.name})
            return redirect("instances:detail", instance_id=instance.id)
    return render(
        request,
        "instances/install.html",
        {
            "product": product,
            "version": version,
            "form": form,
            "instance_name": name,
            "plans": plans,
            "chosen": chosen or (plans[0] if plans else None),
            "coupon": coupon,
            "trial_used": bool(plans) and subscriptions.had_trial(account, plans[0]),
        },
        status=400 if form.errors else 200,
    )


@login_required
def detail(request: HttpRequest, instance_id) -> HttpResponse:
    instance = get_instance(request, instance_id)
    from otomat.billing.models import Invoice, Subscription

    subscription = Subscription.objects.filter(instance=instance).select_related("plan").first()
    open_invoices = (
        subscription.invoices.filter(status=Invoice.Status.OPEN).order_by("due_at")
        if subscription
        else []
    )
    latest = instance.version.product.latest_version()
    newer = (
        latest
        if latest
        and latest.pk != instance.version_id
        and latest.created_at > instance.version.created_at
        else None
    )
    fixes = list(newer.fixes.all()) if newer else []
    return render(
        request,
        "instances/detail.html",
        {
            "instance": instance,
            "newer_version": newer,
            "fixes": fixes,
            "subscription": subscription,
            "open_invoices": open_invoices,
            "events": _labelled(instance.events.select_related("actor")[:30]),
            "logs": tail(instance.log_path, 100),
            "restarting": restarting(instance),
            "chat_url": emulator.chat_url(instance.emulator_bot) if instance.emulator_bot else "",
            "sandboxes": (
                instance.sandboxes.exclude(state=Instance.State.TERMINATED)
                if request.user.is_staff
                else []
            ),
            "can_sandbox": request.user.is_staff
            and instance.kind == Instance.Kind.CUSTOMER
            and instance.state != Instance.State.TERMINATED
            and bool(settings.EMULATOR_URL),
        },
    )


_PROCESS_ANSWERS = re.compile(r"^process \d+ is answering$")
_PROCESS_EXITED = re.compile(r"^process exited \(code (-?\d+|None)\); restart #(\d+) with backoff$")
_GAVE_UP = re.compile(r"^gave up after (\d+) restarts$")


def cause_text(cause: str) -> str:
    """An event's stored cause (English, written by the services and the runner) in the reader's
    language when it is one of the usual ones; anything else as stored."""
    usual = {
        "created": _("created"),
        "installed": _("installed"),
        "started": _("started"),
        "stopped": _("stopped"),
        "restarted": _("restarted"),
        "configuration changed": _("settings changed"),
        "crash loop": _("kept crashing"),
        "order paid": _("order paid"),
        "unpaid": _("invoice unpaid"),
        "trial created": _("trial created"),
        "trial started": _("trial started"),
        "sandbox created": _("sandbox created"),
        "sandbox started": _("sandbox started"),
    }
    if cause in usual:
        return usual[cause]
    if _PROCESS_ANSWERS.match(cause):
        return _("the bot answers")
    if match := _PROCESS_EXITED.match(cause):
        return _("the bot stopped (exit code %(code)s); restarting it, attempt %(n)s") % {
            "code": match[1],
            "n": match[2],
        }
    if match := _GAVE_UP.match(cause):
        return _("stopped trying after %(n)s restarts") % {"n": match[1]}
    return cause


def _labelled(events) -> list:
    """The history's events with their states and usual causes in the reader's language
    (``from_label``, ``to_label``, ``cause_text``) instead of the stored codes."""
    labels = dict(Instance.State.choices)
    result = list(events)
    for event in result:
        event.from_label = labels.get(event.from_state, event.from_state)
        event.to_label = labels.get(event.to_state, event.to_state)
        event.cause_text = cause_text(event.cause)
        event.who = _who(event)
    return result


def _who(event) -> str:
    """Who made the change: the person, "Otomat" for the platform's own processes
    (``system:runner``, ``system:scheduler``, …), "a visitor" for an anonymous trial."""
    if event.actor is not None:
        return str(event.actor)
    if event.actor_label.startswith("system"):
        return _("Otomat (automatic)")
    if event.actor_label == "visitor":
        return _("a visitor")
    return event.actor_label


def restarting(instance: Instance) -> bool:
    """Whether a provisioning instance is being restarted (it was running before), so its status
    says "Restarting…" rather than "Starting the bot…"."""
    if instance.state != Instance.State.PROVISIONING:
        return False
    last = instance.events.filter(to_state=Instance.State.PROVISIONING).only("from_state").first()
    return last is not None and last.from_state in (
        Instance.State.RUNNING,
        Instance.State.PROVISIONING,
        Instance.State.FAILED,
    )


@login_required
def status_partial(request: HttpRequest, instance_id) -> HttpResponse:
    """HTMX: the live status card, polled every few seconds."""
    instance = get_instance(request, instance_id)
    return render(
        request,
        "instances/_status.html",
        {"instance": instance, "restarting": restarting(instance)},
    )


@login_required
def logs_partial(request: HttpRequest, instance_id) -> HttpResponse:
    instance = get_instance(request, instance_id)
    return render(
        request,
        "instances/_logs.html",
        {"instance": instance, "logs": tail(instance.log_path, 100)},
    )


@login_required
@require_POST
def action(request: HttpRequest, instance_id, name: str) -> HttpResponse:
    instance = get_instance(request, instance_id)
    service = ACTIONS.get(name)
    if service is None:
        raise Http404
    try:
        service(instance, actor=request.user)
    except services.InstanceError as exc:
        messages.error(request, str(exc))
    else:
        # Starting and restarting take a moment: the live status card says so while they last
        # (a flash message would still say "Restarting…" once the bot runs).
        if name == "stop":
            messages.success(request, _("Stopped."))
    return redirect("instances:detail", instance_id=instance.id)


@login_required
def remove(request: HttpRequest, instance_id) -> HttpResponse:
    """GET asks for confirmation (typing the name); POST removes."""
    instance = get_instance(request, instance_id)
    error = ""
    if request.method == "POST":
        if request.POST.get("confirm_name", "").strip() != instance.name:
            error = _("Type the instance's name exactly to confirm.")
        else:
            try:
                services.remove_instance(instance, actor=request.user)
            except services.InstanceError as exc:
                error = str(exc)
            else:
                messages.success(request, _("%(name)s was removed.") % {"name": instance.name})
                return redirect("instances:list")
    return render(
        request,
        "instances/remove.html",
        {"instance": instance, "error": error},
        status=400 if error else 200,
    )


@login_required
def edit(request: HttpRequest, instance_id) -> HttpResponse:
    instance = get_instance(request, instance_id)
    if instance.state == Instance.State.TERMINATED:
        raise Http404
    schema = instance.version.config_schema
    form_class = schema_form.build_form_class(
        schema,
        product_slug=instance.version.product.slug,
        source_dir=instance.version.source_path,
    )
    # With ``current`` the form shows the stored values (never the secrets) and a blank secret
    # keeps its stored value.
    form = form_class(request.POST or None, current=instance.full_config())
    if request.method == "POST" and form.is_valid():
        try:
            services.update_config(instance, config=form.config, actor=request.user)
        except schema_form.ConfigError as exc:
            schema_form.add_config_errors(form, exc)
        except services.InstanceError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, _("Settings saved; the bot restarts to apply them."))
            return redirect("instances:detail", instance_id=instance.id)
    return render(
        request,
        "instances/edit.html",
        {"instance": instance, "form": form},
        status=400 if form.errors else 200,
    )


@login_required
@require_POST
def open_sandbox(request: HttpRequest, instance_id) -> HttpResponse:
    """Staff: a sandbox copy of a customer's instance on the emulator (secrets replaced)."""
    if not request.user.is_staff:
        raise Http404
    instance = get_instance(request, instance_id)
    try:
        sandbox = sandboxes.open_sandbox(instance, actor=request.user)
    except services.InstanceError as exc:
        messages.error(request, str(exc))
        return redirect("instances:detail", instance_id=instance.id)
    messages.success(
        request, _("Sandbox started with the same version and settings; secrets were replaced.")
    )
    return redirect("instances:detail", instance_id=sandbox.id)


@login_required
def export(request: HttpRequest, instance_id) -> HttpResponse:
    """Download the instance's data (settings without secrets, files, data store) as a zip."""
    import os

    from django.utils.text import slugify

    instance = get_instance(request, instance_id)
    if instance.kind != Instance.Kind.CUSTOMER:
        raise Http404
    try:
        path = build_export(instance)
    except ExportUnavailable as exc:
        messages.error(request, str(exc))
        return redirect("instances:detail", instance_id=instance.id)
    handle = path.open("rb")
    os.unlink(path)  # the open handle keeps the bytes until the response is sent
    record_audit("instance.exported", actor=request.user, account=instance.account, target=instance)
    filename = f"{slugify(instance.name) or 'instance'}-export.zip"
    return FileResponse(handle, as_attachment=True, filename=filename)


@login_required
@require_POST
def suspend(request: HttpRequest, instance_id) -> HttpResponse:
    """Staff: suspend for abuse or another reason (billing never lifts this suspension)."""
    if not request.user.is_staff:
        raise Http404
    instance = get_instance(request, instance_id)
    try:
        services.suspend_instance(
            instance,
            source=services.SuspensionSource.STAFF,
            reason=request.POST.get("reason", ""),
            actor=request.user,
        )
    except services.InstanceError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("Suspended. The customer sees the reason on this page."))
    return redirect("instances:detail", instance_id=instance.id)


@login_required
@require_POST
def unsuspend(request: HttpRequest, instance_id) -> HttpResponse:
    if not request.user.is_staff:
        raise Http404
    instance = get_instance(request, instance_id)
    if services.unsuspend_instance(
        instance,
        source=services.SuspensionSource.STAFF,
        reason="lifted by staff",
        actor=request.user,
    ):
        messages.success(request, _("Suspension lifted."))
    else:
        messages.error(request, _("This instance is not suspended."))
    return redirect("instances:detail", instance_id=instance.id)


@login_required
@require_POST
def upgrade(request: HttpRequest, instance_id) -> HttpResponse:
    """One click: move to a newer version of the product (e.g. the one that fixes a bug)."""
    from otomat.catalog.models import ProductVersion

    instance = get_instance(request, instance_id)
    version = ProductVersion.objects.filter(
        pk=request.POST.get("version") or 0, product=instance.version.product
    ).first()
    if version is None:
        messages.error(request, _("Choose a version of this product."))
        return redirect("instances:detail", instance_id=instance.id)
    try:
        services.upgrade_instance(instance, version, actor=request.user)
    except services.InstanceError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("Upgraded to %(version)s.") % {"version": version.version})
    return redirect("instances:detail", instance_id=instance.id)
