"""The owner's and staff's monitoring pages: alert rules, incidents (list, detail with timeline
and actions, opened by hand), maintenance windows and silences; and a customer's opt-in."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Case, IntegerField, Value, When
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from otomat.billing.views_staff import owner_required, staff_required
from otomat.monitoring import alerts, incidents
from otomat.monitoring.forms import (
    AlertRuleForm,
    IncidentForm,
    MaintenanceForm,
    PostmortemForm,
    ResolveForm,
    SilenceForm,
    UpdateForm,
)
from otomat.monitoring.models import Alert, AlertPreference, Incident, Maintenance, Silence


@staff_required
def rules(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "monitoring/staff_rules.html",
        {"rules": sorted(alerts.rules().values(), key=lambda r: r.check_name)},
    )


@owner_required
def rule_edit(request: HttpRequest, check: str) -> HttpResponse:
    known = alerts.rules()
    if check not in known:
        raise Http404
    rule = known[check]
    form = AlertRuleForm(request.POST or None, instance=rule)
    if request.method == "POST":
        if form.is_valid():
            alerts.save_rule(form.save(commit=False), actor=request.user)
            messages.success(request, _("Rule saved."))
            return redirect("monitoring:rules")
        messages.error(request, _("Please correct the errors below."))
    return render(
        request, "monitoring/staff_rule_edit.html", {"form": form, "rule": rule}, status=200
    )


@staff_required
def incident_list(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", "")
    rows = Incident.objects.annotate(
        open_first=Case(
            When(status=Incident.Status.RESOLVED, then=Value(1)),
            default=Value(0),
            output_field=IntegerField(),
        )
    ).order_by("open_first", "-opened_at", "-id")
    if status in Incident.Status.values:
        rows = rows.filter(status=status)
    page = Paginator(rows, 25).get_page(request.GET.get("page"))
    return render(
        request,
        "monitoring/staff_incidents.html",
        {
            "page": page,
            "status": status,
            "statuses": Incident.Status.choices,
            "query": f"status={status}&" if status else "",
        },
    )


@staff_required
def incident_new(request: HttpRequest) -> HttpResponse:
    form = IncidentForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            incident = incidents.open_incident(
                title=data["title"],
                severity=data["severity"],
                summary=data["summary"],
                accounts=data["accounts"],
                actor=request.user,
                public=data["public"],
                public_title=data["public_title"],
            )
        except incidents.IncidentError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, _("Incident opened."))
            return redirect("monitoring:incident", incident.pk)
    return render(request, "monitoring/staff_incident_new.html", {"form": form})


def _detail(request, incident, **forms) -> HttpResponse:
    context = {
        "incident": incident,
        "updates": incident.updates.select_related("actor"),
        "alerts": incident.alerts.order_by("state", "subject")[:200],
        "affected_accounts": incident.accounts.order_by("name"),
        "affected_instances": incident.instances.select_related("account")[:200],
        "tickets": incident.tickets.all(),
        "update_form": forms.get("update_form") or UpdateForm(),
        "resolve_form": forms.get("resolve_form") or ResolveForm(),
        "postmortem_form": forms.get("postmortem_form")
        or PostmortemForm(initial={"text": incident.postmortem}),
    }
    return render(
        request,
        "monitoring/staff_incident.html",
        context,
        status=400 if any(f is not None for f in forms.values()) else 200,
    )


@staff_required
def incident_detail(request: HttpRequest, pk: int) -> HttpResponse:
    incident = get_object_or_404(Incident, pk=pk)
    if request.method != "POST":
        return _detail(request, incident)
    action = request.POST.get("action", "")
    try:
        if action == "update":
            form = UpdateForm(request.POST)
            if not form.is_valid():
                return _detail(request, incident, update_form=form)
            incidents.post_update(
                incident,
                form.cleaned_data["text"],
                actor=request.user,
                public=form.cleaned_data["public"],
            )
            messages.success(request, _("Update posted."))
        elif action == "acknowledge":
            incidents.acknowledge(incident, actor=request.user)
            messages.success(request, _("Acknowledged."))
        elif action == "resolve":
            form = ResolveForm(request.POST)
            if not form.is_valid():
                return _detail(request, incident, resolve_form=form)
            incidents.resolve(incident, actor=request.user, note=form.cleaned_data["note"])
            messages.success(request, _("Incident resolved."))
        elif action == "public":
            incidents.set_public(
                incident,
                public=request.POST.get("public") == "on",
                public_title=request.POST.get("public_title", ""),
                actor=request.user,
            )
            messages.success(request, _("Saved."))
        elif action == "postmortem":
            form = PostmortemForm(request.POST)
            if not form.is_valid():
                return _detail(request, incident, postmortem_form=form)
            incidents.set_postmortem(incident, form.cleaned_data["text"], actor=request.user)
            messages.success(request, _("Postmortem saved."))
        else:
            messages.error(request, _("Unknown action."))
            return _detail(request, incident, update_form=UpdateForm())
    except incidents.IncidentError as exc:
        messages.error(request, str(exc))
        return _detail(request, incident, update_form=UpdateForm())
    return redirect("monitoring:incident", incident.pk)


def _windows(request, *, maintenance_form=None, silence_form=None) -> HttpResponse:
    now = timezone.now()
    return render(
        request,
        "monitoring/staff_windows.html",
        {
            "now": now,
            "maintenance": Maintenance.objects.filter(ends_at__gt=now - timedelta(days=30))[:100],
            "silences": Silence.objects.filter(ends_at__gt=now - timedelta(days=7))[:100],
            "maintenance_form": maintenance_form or MaintenanceForm(prefix="m"),
            "silence_form": silence_form or SilenceForm(prefix="s", checks=sorted(alerts.rules())),
            "silenced_alerts": Alert.objects.filter(state=Alert.State.FIRING)
            .exclude(suppressed="")
            .order_by("check_name", "subject")[:100],
        },
        status=400 if (maintenance_form or silence_form) else 200,
    )


@staff_required
def windows(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return _windows(request)
    if request.POST.get("action") == "maintenance":
        form = MaintenanceForm(request.POST, prefix="m")
        if not form.is_valid():
            return _windows(request, maintenance_form=form)
        alerts.create_maintenance(form.save(commit=False), actor=request.user)
        messages.success(request, _("Maintenance window planned."))
    elif request.POST.get("action") == "silence":
        form = SilenceForm(request.POST, prefix="s", checks=sorted(alerts.rules()))
        if not form.is_valid():
            return _windows(request, silence_form=form)
        now = timezone.now()
        data = form.cleaned_data
        alerts.create_silence(
            Silence(
                check_name=data["check_name"],
                match=data["match"].strip(),
                reason=data["reason"],
                starts_at=now,
                ends_at=now + timedelta(minutes=data["minutes"]),
            ),
            actor=request.user,
        )
        messages.success(request, _("Silence set."))
    else:
        messages.error(request, _("Unknown action."))
        return _windows(request, maintenance_form=MaintenanceForm(prefix="m"))
    return redirect("monitoring:windows")


@staff_required
@require_POST
def window_end(request: HttpRequest, kind: str, pk: int) -> HttpResponse:
    model = {"maintenance": Maintenance, "silence": Silence}.get(kind)
    if model is None:
        raise Http404
    window = get_object_or_404(model, pk=pk)
    if alerts.end_early(window, actor=request.user):
        messages.success(request, _("Ended."))
    else:
        messages.error(request, _("It had ended already."))
    return redirect("monitoring:windows")


@login_required
def preferences(request: HttpRequest) -> HttpResponse:
    """A customer's choice to be told about their own bots' problems (default off)."""
    if request.user.is_staff or request.user.account is None:
        raise Http404
    pref, _created = AlertPreference.objects.get_or_create(user=request.user)
    if request.method == "POST":
        value = request.POST.get("instance_alerts", "")
        if value not in ("on", "off"):
            messages.error(request, _("Choose on or off."))
            return render(request, "monitoring/preferences.html", {"pref": pref}, status=400)
        pref.instance_alerts = value == "on"
        pref.save(update_fields=["instance_alerts"])
        from otomat.accounts.services import record_audit

        record_audit(
            "monitoring.preference_changed",
            actor=request.user,
            target=pref,
            data={"instance_alerts": pref.instance_alerts},
        )
        messages.success(request, _("Saved."))
        return redirect("monitoring:preferences")
    return render(request, "monitoring/preferences.html", {"pref": pref})
