"""Customer and staff pages for instances. Thin: scope, parse, call a service, render.

The instance page (with its plan, invoices and logs), its logs fragment and the order form also
show billing and the runtime: they are composed in ``otomat.web.instance_pages`` from what this
module exposes (:func:`get_instance`, :func:`instance_context`)."""

from __future__ import annotations

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
from otomat.instances.causes import cause_text
from otomat.instances.exports import ExportUnavailable, build_export
from otomat.instances.models import Instance
from otomat.lib import emulator

ACTIONS = {
    "start": services.start_instance,
    "stop": services.stop_instance,
    "restart": services.restart_instance,
}


# What the lists of instances never show: the configuration (its secrets decrypted per row) and
# the version's manifest, settings schema and command (JSON documents decoded per row).
LIST_DEFERRED = (
    "config",
    "secrets",
    "version__manifest",
    "version__config_schema",
    "version__command",
)


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
    instances = (
        instances.filter(account=request.user.account)
        .exclude(state=Instance.State.TERMINATED)
        .defer(*LIST_DEFERRED)
    )
    return render(request, "instances/list.html", {"instances": instances})


@login_required
def manage(request: HttpRequest) -> HttpResponse:
    """Staff: every instance of every customer, filtered by state, product and customer."""
    if not request.user.is_staff:
        raise Http404
    instances = scoped_instances(request).defer(*LIST_DEFERRED)
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


def instance_context(request: HttpRequest, instance: Instance) -> dict:
    """What instances know for an instance's page (``instances/detail.html``): the product's
    latest version, a newer version than the instance's and the bugs it fixes, the history in the reader's language, whether it is restarting, its
    emulator chat, and for staff its sandboxes. The page itself, with the plan, the invoices to
    pay and the logs, is composed above (``otomat.web.instance_pages``)."""
    latest = instance.version.product.latest_version()
    newer = newer_version(instance, latest)
    is_staff = request.user.is_staff
    return {
        "instance": instance,
        "latest_version": latest,
        "newer_version": newer,
        "fixes": list(newer.fixes.all()) if newer else [],
        "events": _labelled(instance.events.select_related("actor")[:30]),
        "restarting": restarting(instance),
        "chat_url": emulator.chat_url(instance.emulator_bot) if instance.emulator_bot else "",
        "sandboxes": (
            list(instance.sandboxes.exclude(state=Instance.State.TERMINATED)) if is_staff else []
        ),
        "can_sandbox": is_staff
        and instance.kind == Instance.Kind.CUSTOMER
        and instance.state != Instance.State.TERMINATED
        and bool(settings.EMULATOR_URL),
    }


def newer_version(instance: Instance, latest):
    """``latest`` (the product's latest version) when it is newer than the instance's."""
    if (
        latest
        and latest.pk != instance.version_id
        and latest.created_at > instance.version.created_at
    ):
        return latest
    return None


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
