"""A person links their Telegram chat with the owner's bot to get notices there; staff read
the mail outbox (mail kept instead of sent when no mail server is configured)."""

from __future__ import annotations

from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.clickjacking import xframe_options_sameorigin

from otomat.notify import services
from otomat.notify.models import OutboxMessage, TelegramLink
from otomat.notify.outbox import in_use as outbox_in_use


def _bot_links(code: str) -> dict[str, str]:
    username = settings.OWNER_BOT_USERNAME
    links = {"username": username, "command": f"/start {code}"}
    if username:
        links["telegram"] = f"https://t.me/{username}?start={code}"
        if settings.EMULATOR_PUBLIC_URL and settings.BOT_API_URL == settings.EMULATOR_URL:
            links["emulator"] = f"{settings.EMULATOR_PUBLIC_URL}/chat/{username}"
    return links


@login_required
def telegram(request: HttpRequest) -> HttpResponse:
    link = TelegramLink.objects.filter(user=request.user).first()
    code = ""
    if request.method == "POST":
        if request.POST.get("action") == "unlink":
            services.unlink_telegram(request.user)
            messages.success(request, _("Telegram is disconnected; notices come by email only."))
            return redirect("notify:telegram")
        if services.telegram_enabled():
            code = services.telegram_link_code(request.user)
    return render(
        request,
        "notify/telegram.html",
        {
            "link": link,
            "enabled": services.telegram_enabled(),
            "code": code,
            "bot": _bot_links(code) if code else {},
        },
    )


def _staff_only(view):
    """Anonymous visitors go to the login page; logged-in people who are not staff get a 404:
    the outbox holds everyone's mail."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.is_staff:
            raise Http404
        return view(request, *args, **kwargs)

    return wrapper


@_staff_only
def outbox(request: HttpRequest) -> HttpResponse:
    """The mail that was kept instead of sent, newest first."""
    rows = OutboxMessage.objects.defer("raw", "html_body", "text_body", "headers")
    page = Paginator(rows, 50).get_page(request.GET.get("page"))
    return render(request, "notify/outbox.html", {"page": page, "in_use": outbox_in_use()})


@_staff_only
def outbox_message(request: HttpRequest, message_id: int) -> HttpResponse:
    message = get_object_or_404(OutboxMessage.objects.defer("raw"), pk=message_id)
    return render(request, "notify/outbox_message.html", {"message": message})


@_staff_only
@xframe_options_sameorigin
def outbox_html(request: HttpRequest, message_id: int) -> HttpResponse:
    """The HTML body, for the sandboxed frame on the message page: no scripts, no forms, no
    outside requests (the policy allows only inline styles and data: images)."""
    message = get_object_or_404(OutboxMessage.objects.only("html_body"), pk=message_id)
    if not message.html_body:
        raise Http404
    response = HttpResponse(message.html_body, content_type="text/html; charset=utf-8")
    response["Content-Security-Policy"] = (
        "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:"
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Referrer-Policy"] = "no-referrer"
    return response


@_staff_only
def outbox_raw(request: HttpRequest, message_id: int) -> HttpResponse:
    """The whole message as a .eml file (attachments included), always a download."""
    message = get_object_or_404(OutboxMessage.objects.only("raw"), pk=message_id)
    response = HttpResponse(bytes(message.raw), content_type="message/rfc822")
    response["Content-Disposition"] = f'attachment; filename="message-{message.pk}.eml"'
    response["X-Content-Type-Options"] = "nosniff"
    return response
