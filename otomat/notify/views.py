"""A person links their Telegram chat with the owner's bot to get notices there."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from otomat.notify import services
from otomat.notify.models import TelegramLink


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
