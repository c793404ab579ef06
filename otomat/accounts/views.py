"""Sign-up, login (throttled by django-axes, then the second factor), members, preferences and API tokens. Thin: parse, call a
service, render."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from otomat.accounts import services, two_factor
from otomat.accounts.forms import (
    ApiTokenForm,
    EmailAuthenticationForm,
    MemberForm,
    PreferencesForm,
    SignUpForm,
)
from otomat.accounts.models import ApiToken, AuditEvent, Membership, User
from otomat.accounts.throttle import client_ip
from otomat.accounts.views_two_factor import start_pending_login


class LoginView(auth_views.LoginView):
    """Django's login. Failed attempts are counted and locked out by django-axes (its backend and
    middleware); a person with an authenticator is sent on to the code step before they are
    logged in."""

    form_class = EmailAuthenticationForm
    template_name = "accounts/login.html"

    def form_valid(self, form):
        user = form.get_user()
        if two_factor.has_authenticator(user):
            start_pending_login(self.request, user)
            url = reverse("accounts:login_code")
            return redirect(f"{url}?{urlencode({'next': self.get_success_url()})}")
        response = super().form_valid(form)
        services.record_audit("auth.login", actor=user, ip=client_ip(self.request))
        return response


def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("web:home")
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = services.sign_up(**form.cleaned_data)
        except services.AccountError as exc:
            form.add_error("email", str(exc))
        else:
            login(request, user, backend="otomat.accounts.backends.EmailBackend")
            messages.success(request, _("Welcome to Otomat! Pick a product to install."))
            return redirect("catalog:list")
    return render(
        request, "accounts/signup.html", {"form": form}, status=400 if form.errors else 200
    )


@login_required
def members(request: HttpRequest) -> HttpResponse:
    account = request.user.account
    if account is None:
        raise Http404
    form = MemberForm(request.POST or None)
    is_responsible = account.memberships.filter(
        user=request.user, role=Membership.Role.RESPONSIBLE
    ).exists()
    if request.method == "POST" and form.is_valid():
        try:
            services.add_member(account, actor=request.user, **form.cleaned_data)
        except services.AccountError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, _("Invitation sent to %(email)s.") % form.cleaned_data)
            return redirect("accounts:members")
    return render(
        request,
        "accounts/members.html",
        {
            "account": account,
            "memberships": account.memberships.select_related("user").order_by("created_at"),
            "form": form,
            "is_responsible": is_responsible,
        },
        status=400 if form.errors else 200,
    )


@login_required
@require_POST
def remove_member(request: HttpRequest, user_id: int) -> HttpResponse:
    account = request.user.account
    if account is None:
        raise Http404
    user = get_object_or_404(User, pk=user_id, membership__account=account)
    try:
        services.remove_member(account, user=user, actor=request.user)
    except services.AccountError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("%(name)s no longer has access.") % {"name": user})
    return redirect("accounts:members")


@login_required
def preferences(request: HttpRequest) -> HttpResponse:
    form = PreferencesForm(request.POST or None, instance=request.user)
    if request.method == "POST" and form.is_valid():
        form.save()
        services.record_audit(
            "account.preferences_changed", actor=request.user, target=request.user
        )
        messages.success(request, _("Preferences saved."))
        return redirect("accounts:preferences")
    return render(
        request, "accounts/preferences.html", {"form": form}, status=400 if form.errors else 200
    )


@login_required
def api_tokens(request: HttpRequest) -> HttpResponse:
    form = ApiTokenForm(request.POST or None)
    new_token = None
    if request.method == "POST" and form.is_valid():
        row, new_token = ApiToken.issue(request.user, form.cleaned_data["name"])
        services.record_audit("api_token.created", actor=request.user, target=row)
        form = ApiTokenForm()
    tokens = request.user.api_tokens.filter(revoked_at__isnull=True).order_by("-created_at")
    return render(
        request,
        "accounts/api_tokens.html",
        {"form": form, "tokens": tokens, "new_token": new_token},
        status=400 if form.errors else 200,
    )


@login_required
@require_POST
def revoke_api_token(request: HttpRequest, token_id: int) -> HttpResponse:
    token = get_object_or_404(ApiToken, pk=token_id, user=request.user, revoked_at__isnull=True)
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    services.record_audit("api_token.revoked", actor=request.user, target=token)
    messages.success(request, _("Token revoked."))
    return redirect("accounts:api_tokens")


@login_required
def audit_log(request: HttpRequest) -> HttpResponse:
    """The audit trail: staff see everything, customers see their own account's."""
    from django.core.paginator import Paginator

    events = AuditEvent.objects.select_related("actor", "account")
    if not request.user.is_staff:
        if request.user.account is None:
            raise Http404
        events = events.filter(account=request.user.account)
    page = Paginator(events, 50).get_page(request.GET.get("page"))
    return render(request, "accounts/audit_log.html", {"page": page})


@require_POST
def set_language(request: HttpRequest) -> HttpResponse:
    """The header's language switcher. Django's view sets the cookie; a logged-in person's saved
    language would win over it on the next page, so the choice is saved as their preference."""
    from django.conf import settings
    from django.views.i18n import set_language as django_set_language

    response = django_set_language(request)
    language = request.POST.get("language", "")
    if (
        request.user.is_authenticated
        and language in dict(settings.LANGUAGES)
        and language != request.user.language
    ):
        User.objects.filter(pk=request.user.pk).update(language=language)
        services.record_audit(
            "account.preferences_changed",
            actor=request.user,
            target=request.user,
            data={"fields": ["language"]},
        )
    return response
