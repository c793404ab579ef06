"""Notifications by email and Telegram (the owner's bot), from templates in each person's
language.

``notify_user`` renders and stores one ``Notification`` per channel inside the caller's
transaction (the outbox); after commit, ``deliver_pending`` sends them and retries failures with
backoff. Templates live in ``templates/notify/<kind>.subject.txt`` and ``<kind>.body.txt`` and are
rendered with the person's language and time zone active.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
import zoneinfo
from datetime import timedelta
from typing import Any

import httpx
from django.conf import settings
from django.core.mail import EmailMessage, send_mail
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation

from otomat.accounts.models import Account, User
from otomat.notify.models import (
    BotCursor,
    Notification,
    TelegramLink,
    TelegramLinkCode,
)

log = logging.getLogger("otomat.notify")
MAX_ATTEMPTS = 8
TELEGRAM_LIMIT = 4096  # characters per Telegram message


class NotifyError(Exception):
    """A notification could not be sent; the message says why (no secrets)."""


class RateLimited(NotifyError):
    """Telegram asked to wait ``retry_after`` seconds before sending again (429)."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


# -- composing --------------------------------------------------------------------------------


def render(
    kind: str, context: dict[str, Any], *, language: str, tz: str = "UTC"
) -> tuple[str, str]:
    """(subject, body) of template ``kind`` in ``language``; raises TemplateDoesNotExist."""
    try:
        zone = zoneinfo.ZoneInfo(tz or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = zoneinfo.ZoneInfo("UTC")
    with translation.override(language or "en"), timezone.override(zone):
        subject = render_to_string(f"notify/{kind}.subject.txt", context).strip()
        body = render_to_string(f"notify/{kind}.body.txt", context).strip()
    return " ".join(subject.split())[:200], body


def telegram_enabled() -> bool:
    return bool(settings.OWNER_BOT_TOKEN)


def notify_user(
    user: User,
    kind: str,
    context: dict[str, Any],
    *,
    dedupe_key: str | None = None,
    channels: list[str] | None = None,
    reply_markup: dict | None = None,
) -> list[Notification]:
    """Queue ``kind`` for ``user`` by email and, when they linked Telegram, by Telegram. Must be
    called inside the transaction of the change it reports. With ``dedupe_key``, a second call
    with the same key queues nothing (returns []). ``channels`` narrows the channels (a rate
    limit); ``reply_markup`` (Bot API inline keyboard) goes with the Telegram message."""
    if not user.is_active:
        return []
    subject, body = render(
        kind, {**context, "user": user}, language=user.language, tz=user.timezone
    )
    wanted = channels
    channels = [Notification.Channel.EMAIL] if user.email else []
    if telegram_enabled() and TelegramLink.objects.filter(user=user).exists():
        channels.append(Notification.Channel.TELEGRAM)
    if wanted is not None:
        channels = [c for c in channels if c in wanted]
    created: list[Notification] = []
    for channel in channels:
        # A Telegram notice keeps its inline keyboard in ``headers`` (email headers otherwise).
        headers = (
            {"reply_markup": reply_markup}
            if reply_markup and channel == Notification.Channel.TELEGRAM
            else {}
        )
        key = f"{dedupe_key}:{channel}"[:200] if dedupe_key else None
        try:
            with transaction.atomic():
                created.append(
                    Notification.objects.create(
                        user=user,
                        channel=channel,
                        kind=kind,
                        subject=subject,
                        body=body,
                        dedupe_key=key,
                        headers=headers,
                    )
                )
        except IntegrityError:
            continue  # already queued under this key
    if created:
        transaction.on_commit(kick_delivery)
    return created


# Handlers of messages people send to the owner's bot from a linked chat: handler(user, text)
# returns the answer or None (support registers its ticket handler in AppConfig.ready()).
MESSAGE_HANDLERS: list = []

# kind prefix ("billing") → loader(kind, refs) returning the template context, for notices
# queued in bulk and rendered at delivery. Apps register theirs in AppConfig.ready().
CONTEXT_LOADERS: dict[str, Any] = {}


# Handlers of inline-button presses in the owner's bot, by callback-data prefix:
# handler(user, data) returns (answer shown to the person, new message text or None, new
# reply_markup or None) or None. Monitoring registers "mon:" (Acknowledge) in AppConfig.ready().
CALLBACK_HANDLERS: dict[str, Any] = {}


def register_callback_handler(prefix: str, handler) -> None:
    CALLBACK_HANDLERS[prefix] = handler


def register_context_loader(prefix: str, loader) -> None:
    CONTEXT_LOADERS[prefix] = loader


def notify_many(items: list[tuple]) -> int:
    """Queue many notices at once — (person, kind, refs, dedupe key[, email headers]) each — with one query for
    Telegram links and one insert; a key already queued is skipped (ignore conflicts). ``refs``
    is JSON (e.g. {"invoice": 42}); the notice is rendered when it is delivered, by the loader
    registered for the kind's prefix. For bulk work such as the billing run, where rendering
    thousands of templates inside the run would dominate its time."""
    people = {user.pk for user, *_ in items}
    linked = (
        set(TelegramLink.objects.filter(user_id__in=people).values_list("user_id", flat=True))
        if telegram_enabled()
        else set()
    )
    rows = []
    for item in items:
        user, kind, refs, dedupe_key = item[:4]
        headers = item[4] if len(item) > 4 else {}
        if not user.is_active:
            continue
        channels = [Notification.Channel.EMAIL] if user.email else []
        if user.pk in linked:
            channels.append(Notification.Channel.TELEGRAM)
        rows += [
            Notification(
                user=user,
                channel=channel,
                kind=kind,
                context=refs,
                headers=headers if channel == Notification.Channel.EMAIL else {},
                dedupe_key=f"{dedupe_key}:{channel}"[:200],
            )
            for channel in channels
        ]
    Notification.objects.bulk_create(rows, ignore_conflicts=True)
    if rows:
        transaction.on_commit(kick_delivery)
    return len(rows)


def notify_account(
    account: Account, kind: str, context: dict[str, Any], *, dedupe_key: str | None = None
) -> list[Notification]:
    """Queue ``kind`` for the account's responsible person (who gets billing notices)."""
    person = account.responsible
    if person is None:
        return []
    return notify_user(person, kind, {**context, "account": account}, dedupe_key=dedupe_key)


# -- delivering -------------------------------------------------------------------------------

_last_kick = 0.0
_kick_lock = threading.Lock()


def kick_delivery() -> None:
    """Ask a worker to deliver what is queued; at most once a second per process (a billing run
    queues thousands of notices in one transaction)."""
    global _last_kick
    with _kick_lock:
        now = time.monotonic()
        if now - _last_kick < 1.0:
            return
        _last_kick = now
    try:
        from otomat.notify.tasks import deliver_pending_task

        deliver_pending_task.enqueue()
    except Exception:  # the periodic delivery picks it up anyway
        log.exception("could not enqueue notification delivery")


RETRY_AFTER_MAX_SECONDS = 5  # Telegram's per-chat pace: wait this long in line, not longer


def send_telegram(chat_id: int, text: str, *, reply_markup: dict | None = None) -> None:
    """Send ``text`` to ``chat_id`` from the owner's bot; raises NotifyError. When Telegram asks
    to slow down (429 with a short ``retry_after``, e.g. several messages to one chat within a
    second), it waits and tries again, twice at most; a longer wait, or a third refusal, raises
    :class:`RateLimited` with Telegram's ``retry_after`` (``deliver`` tries again then)."""
    if not settings.OWNER_BOT_TOKEN:
        raise NotifyError("No owner bot is configured (OTOMAT_OWNER_BOT_TOKEN).")
    url = f"{settings.BOT_API_URL}/bot{settings.OWNER_BOT_TOKEN}/sendMessage"
    body = {
        "chat_id": chat_id,
        "text": text[:TELEGRAM_LIMIT],
        "link_preview_options": {"is_disabled": True},
    }
    if reply_markup:
        body["reply_markup"] = reply_markup
    for attempt in range(3):
        try:
            response = httpx.post(url, json=body, timeout=15)
            payload = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise NotifyError(f"Bot API unreachable: {type(exc).__name__}") from None
        if payload.get("ok"):
            return
        wait = (payload.get("parameters") or {}).get("retry_after")
        if attempt < 2 and isinstance(wait, int) and 0 < wait <= RETRY_AFTER_MAX_SECONDS:
            time.sleep(wait)
            continue
        refused = f"Bot API refused: {payload.get('description', response.status_code)}"
        if isinstance(wait, int) and wait > 0:
            raise RateLimited(refused, retry_after=wait)
        raise NotifyError(refused)


def _send(notification: Notification) -> None:
    if notification.channel == Notification.Channel.EMAIL:
        if notification.headers:
            headers = {k: v for k, v in notification.headers.items() if k != "From"}
            EmailMessage(
                notification.subject,
                notification.body,
                notification.headers.get("From") or settings.DEFAULT_FROM_EMAIL,
                [notification.user.email],
                headers=headers,
            ).send()
        else:
            send_mail(
                notification.subject,
                notification.body,
                settings.DEFAULT_FROM_EMAIL,
                [notification.user.email],
            )
    else:
        link = TelegramLink.objects.filter(user_id=notification.user_id).first()
        if link is None:
            raise NotifyError("The person unlinked Telegram.")
        send_telegram(
            link.chat_id,
            f"{notification.subject}\n\n{notification.body}",
            reply_markup=(notification.headers or {}).get("reply_markup"),
        )


def _render_queued(notification: Notification) -> None:
    """Render a notice queued in bulk, in its person's language, and keep the text."""
    loader = CONTEXT_LOADERS.get(notification.kind.split("/", 1)[0])
    if loader is None:
        raise NotifyError(f"No context loader for {notification.kind!r}.")
    user = notification.user
    context = {**loader(notification.kind, notification.context), "user": user}
    subject, body = render(notification.kind, context, language=user.language, tz=user.timezone)
    notification.subject, notification.body = subject, body
    Notification.objects.filter(pk=notification.pk).update(subject=subject, body=body)


def deliver(notification_id: int, *, now=None) -> bool:
    """Send one queued notification; returns True when sent. Claims it first with a conditional
    update (two workers never send the same one), and on failure schedules a retry with backoff
    (1, 2, 4 … minutes), giving up after MAX_ATTEMPTS."""
    now = now or timezone.now()
    claimed = Notification.objects.filter(
        pk=notification_id, sent_at__isnull=True, gave_up=False, next_attempt_at__lte=now
    ).update(next_attempt_at=now + timedelta(minutes=10))  # a lease while we send
    if not claimed:
        return False
    notification = Notification.objects.select_related("user").get(pk=notification_id)
    try:
        if not notification.body:
            _render_queued(notification)
        _send(notification)
    except RateLimited as exc:
        # Not the message's fault: try again when Telegram said, not minutes later, and do
        # not count it towards giving up.
        retry_at = timezone.now() + timedelta(seconds=exc.retry_after)
        Notification.objects.filter(pk=notification_id).update(
            last_error=str(exc)[:300], next_attempt_at=retry_at
        )
        log.info("notification %s: Telegram asks to wait %s s", notification_id, exc.retry_after)
        _deliver_at(retry_at)
        return False
    except Exception as exc:
        attempts = notification.attempts + 1
        Notification.objects.filter(pk=notification_id).update(
            attempts=attempts,
            last_error=str(exc)[:300],
            next_attempt_at=now + timedelta(minutes=2 ** (attempts - 1)),
            gave_up=attempts >= MAX_ATTEMPTS,
        )
        log.warning("notification %s failed (%s): %s", notification_id, attempts, exc)
        return False
    Notification.objects.filter(pk=notification_id).update(
        sent_at=timezone.now(), attempts=notification.attempts + 1, last_error=""
    )
    return True


def _deliver_at(when) -> None:
    """Ask a worker to deliver at ``when`` (a backend that cannot defer: the periodic delivery
    picks it up)."""
    try:
        from otomat.notify.tasks import deliver_pending_task

        if deliver_pending_task.get_backend().supports_defer:
            deliver_pending_task.using(run_after=when).enqueue()
    except Exception:
        log.exception("could not schedule notification delivery")


def deliver_pending(*, limit: int = 500, now=None) -> int:
    """Send up to ``limit`` due notifications, oldest first; returns how many were sent."""
    now = now or timezone.now()
    ids = list(
        Notification.objects.filter(sent_at__isnull=True, gave_up=False, next_attempt_at__lte=now)
        .order_by("next_attempt_at", "id")
        .values_list("id", flat=True)[:limit]
    )
    return sum(1 for pk in ids if deliver(pk, now=now))


# -- linking Telegram -------------------------------------------------------------------------


def telegram_link_code(user: User) -> str:
    """A fresh one-time code for ``/start <code>`` in the owner's bot (older ones stop working)."""
    with transaction.atomic():
        TelegramLinkCode.objects.filter(user=user).delete()
        code = secrets.token_urlsafe(12).replace("-", "x").replace("_", "y")
        TelegramLinkCode.objects.create(user=user, code=code)
    return code


def link_chat(code: str, *, chat_id: int, username: str = "") -> User | None:
    """Tie ``chat_id`` to the person whose code this is (valid for an hour); None if unknown."""
    cutoff = timezone.now() - timedelta(hours=1)
    with transaction.atomic():
        row = (
            TelegramLinkCode.objects.select_related("user")
            .filter(code=code, created_at__gte=cutoff)
            .first()
        )
        if row is None:
            return None
        TelegramLink.objects.update_or_create(
            user=row.user, defaults={"chat_id": chat_id, "username": username[:64]}
        )
        TelegramLinkCode.objects.filter(user=row.user).delete()
    return row.user


def unlink_telegram(user: User) -> None:
    TelegramLink.objects.filter(user=user).delete()


def poll_owner_bot(*, timeout: int = 0) -> int:
    """Read the owner bot's updates once (getUpdates from the stored offset) and answer
    ``/start <code>`` by linking the chat. Returns how many updates were handled. Other
    messages get a short help text. Does nothing without an owner bot."""
    if not settings.OWNER_BOT_TOKEN:
        return 0
    base = f"{settings.BOT_API_URL}/bot{settings.OWNER_BOT_TOKEN}"
    cursor, _ = BotCursor.objects.get_or_create(bot="owner")
    try:
        response = httpx.post(
            f"{base}/getUpdates",
            json={
                "offset": cursor.offset,
                "timeout": timeout,
                "allowed_updates": ["message", "callback_query"],
            },
            timeout=timeout + 10,
        )
        updates = response.json().get("result") or []
    except (httpx.HTTPError, ValueError, AttributeError):
        log.warning("owner bot: getUpdates failed")
        return 0
    handled = 0
    for update in updates:
        if update.get("callback_query"):
            _answer_callback(base, update["callback_query"])
            handled += 1
            BotCursor.objects.filter(bot="owner").update(offset=int(update["update_id"]) + 1)
            continue
        message = update.get("message") or {}
        chat = message.get("chat") or {}
        text = (message.get("text") or "").strip()
        if chat.get("type") == "private" and text and not text.startswith("/start"):
            link = TelegramLink.objects.filter(chat_id=chat["id"]).select_related("user").first()
            reply = None
            if link is not None:
                # What the person answered with Telegram's "Reply" (a notice about a ticket).
                replied_to = (message.get("reply_to_message") or {}).get("text") or ""
                for handler in MESSAGE_HANDLERS:
                    reply = handler(link.user, text, replied_to=replied_to)
                    if reply:
                        break
            else:
                reply = translation.gettext(
                    "In Otomat, open Telegram notices in your account menu and connect from there."
                )
            if reply:
                try:
                    send_telegram(chat["id"], reply)
                except NotifyError:
                    log.warning("owner bot: could not answer")
        elif chat.get("type") == "private" and text.startswith("/start"):
            code = text.partition(" ")[2].strip()
            user = link_chat(code, chat_id=chat["id"], username=chat.get("username") or "")
            if user is not None:
                with translation.override(user.language):
                    reply = translation.gettext(
                        "Connected. Invoices, reminders and notices for %(email)s come here now."
                    ) % {"email": user.email}
            else:
                reply = translation.gettext(
                    "In Otomat, open Telegram notices in your account menu and connect from there."
                )
            try:
                send_telegram(chat["id"], reply)
            except NotifyError:
                log.warning("owner bot: could not answer /start")
        handled += 1
        BotCursor.objects.filter(bot="owner").update(offset=int(update["update_id"]) + 1)
    return handled


def _answer_callback(base: str, query: dict) -> None:
    """A button pressed in the owner's bot: the handler of its data's prefix acts for the
    linked person; the press is answered (Telegram shows the text) and, when the handler says
    so, the message is edited (e.g. "Acknowledged by …", without the button)."""
    data = str(query.get("data") or "")
    chat_id = (query.get("from") or {}).get("id")
    link = TelegramLink.objects.filter(chat_id=chat_id).select_related("user").first()
    result = None
    if link is None:
        answer = translation.gettext("Connect this chat in Otomat first.")
    else:
        handler = next((h for p, h in CALLBACK_HANDLERS.items() if data.startswith(p)), None)
        with translation.override(link.user.language):
            try:
                result = handler(link.user, data) if handler else None
            except Exception:
                log.exception("owner bot: callback handler failed")
            answer = result[0] if result else translation.gettext("This button does nothing now.")
    try:
        httpx.post(
            f"{base}/answerCallbackQuery",
            json={"callback_query_id": query.get("id"), "text": answer[:200]},
            timeout=15,
        )
        message = query.get("message") or {}
        if result and result[1] and message.get("message_id"):
            body = {
                "chat_id": (message.get("chat") or {}).get("id"),
                "message_id": message["message_id"],
                "text": result[1][:TELEGRAM_LIMIT],
                "link_preview_options": {"is_disabled": True},
            }
            if result[2]:
                body["reply_markup"] = result[2]
            httpx.post(f"{base}/editMessageText", json=body, timeout=15)
    except httpx.HTTPError:
        log.warning("owner bot: could not answer a button")
