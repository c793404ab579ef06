"""The list and edit pages of the owner's configuration rows (plans, tax rates, SLA policies,
canned replies…), shared by the apps that have them. Each app keeps a registry
``{kind: (model, form class, title)}`` and its own templates and URL names. It sits in
accounts, beside the audit log it writes, so that any app's staff pages may use it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Model, ProtectedError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _

from otomat.accounts.services import record_audit


@dataclass(frozen=True)
class ConfigPages:
    app: str  # URL namespace and audit prefix, e.g. "billing"
    registry: dict  # kind → (model, form class, title)
    ordering: tuple[str, ...] = ("pk",)
    before_save: Callable[[str, Model], None] | None = None  # e.g. stamp updated_at

    def _entry(self, kind: str):
        if kind not in self.registry:
            raise Http404
        return self.registry[kind]

    def list(self, request: HttpRequest, kind: str) -> HttpResponse:
        model, _form, title = self._entry(kind)
        rows = model.objects.all()
        if not rows.ordered:
            rows = rows.order_by(*self.ordering)
        page = Paginator(rows, 50).get_page(request.GET.get("page"))
        return render(
            request,
            f"{self.app}/staff/config_list.html",
            {"kind": kind, "title": title, "page": page, "kinds": self.registry},
        )

    def edit(self, request: HttpRequest, kind: str, pk: int | None = None) -> HttpResponse:
        """Create or change one row (validated by its form and the model), or delete it when
        nothing protects it; every save and deletion goes to the audit log."""
        model, form_class, title = self._entry(kind)
        obj = get_object_or_404(model, pk=pk) if pk else None
        form = form_class(request.POST or None, instance=obj)
        if request.method == "POST":
            if request.POST.get("delete") and obj is not None:
                try:
                    obj.delete()
                except ProtectedError:
                    messages.error(request, _("It is in use; deactivate it instead."))
                    return redirect(f"{self.app}:config_edit", kind=kind, pk=obj.pk)
                record_audit(
                    f"{self.app}.{kind}.deleted", actor=request.user, data={"name": str(obj)}
                )
                messages.success(request, _("Deleted."))
                return redirect(f"{self.app}:config", kind=kind)
            if form.is_valid():
                saved = form.save(commit=False)
                try:
                    saved.full_clean()
                except ValidationError as exc:
                    form.add_error(None, exc)
                else:
                    if self.before_save:
                        self.before_save(kind, saved)
                    saved.save()
                    form.save_m2m()
                    record_audit(
                        f"{self.app}.{kind}.saved",
                        actor=request.user,
                        target=saved,
                        data={"new": not pk},
                    )
                    messages.success(request, _("Saved."))
                    return redirect(f"{self.app}:config", kind=kind)
        return render(
            request,
            f"{self.app}/staff/config_edit.html",
            {"kind": kind, "title": title, "form": form, "obj": obj, "kinds": self.registry},
            status=400 if form.errors else 200,
        )
