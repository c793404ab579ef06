"""Files: sendPhoto, sendDocument, getFile, downloads, and people sending files to bots.

Uploads arrive as ``multipart/form-data`` (what aiogram's ``BufferedInputFile``/``FSInputFile``
and python-telegram-bot's ``InputFile`` send) or as the ``file_id`` of an earlier upload. A URL is
refused: Telegram would fetch it, but the emulator has no internet access.

Files live in memory in a bounded :class:`FileStore` (count and total bytes; the oldest are
forgotten first, after which their ``file_id`` answers "wrong file identifier"). They are not
written to the state file. Photos keep one size, the original: the emulator does not resize, and
reads the dimensions from the PNG, JPEG, GIF or WebP header.
"""

from __future__ import annotations

import mimetypes
import re
import secrets
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .botapi import Call, _reply_markup, _reply_target, method
from .errors import ApiError, bad_request
from .filestore import PATH_SAFE, FileStore, StoredFile, image_size
from .formatting import detect_entities, render_text
from .params import Params, read_request_params

MAX_CAPTION_LENGTH = 1024
_URL_RE = re.compile(r"^\s*[a-z][a-z0-9+.-]*://", re.IGNORECASE)
NO_INTERNET = (
    "failed to get HTTP URL content: the Otomat Telegram emulator has no internet access; "
    "upload the file (multipart/form-data) or reuse a file_id"
)
WRONG_FILE_ID = "wrong file identifier/HTTP URL specified"


# ------------------------------------------------------------------- reading uploads


@dataclass
class Upload:
    """A file taken from a request: new bytes, or an existing stored file (``existing``)."""

    data: bytes = b""
    file_name: str | None = None
    mime_type: str | None = None
    existing: StoredFile | None = None


def read_upload(store: FileStore, params: Params, name: str) -> Upload:
    """The file in parameter ``name``: a multipart part, a ``file_id`` or (refused) a URL.

    Also accepts ``attach://<part>`` references, which clients use for media inside JSON.
    """
    return read_upload_value(store, params, params.raw(name), name)


def read_upload_value(store: FileStore, params: Params, value: Any, name: str) -> Upload:
    """Like :func:`read_upload` for a value given inline (an ``InputMedia``'s ``media``)."""
    if isinstance(value, str) and value.startswith("attach://"):
        value = params.raw(value.removeprefix("attach://"))
    if value is None:
        raise bad_request(f"there is no {name} in the request")
    if isinstance(value, web.FileField):
        data = value.file.read()
        file_name = _clean_file_name(value.filename)
        mime = value.content_type
        if not mime or mime == "application/octet-stream":
            mime = mimetypes.guess_type(file_name or "")[0] or mime
        return Upload(data=data, file_name=file_name, mime_type=mime)
    if isinstance(value, bytes | bytearray):
        return Upload(data=bytes(value))
    if not isinstance(value, str):
        raise bad_request(WRONG_FILE_ID)
    if _URL_RE.match(value):
        raise bad_request(NO_INTERNET)
    stored = store.get(value.strip())
    if stored is None:
        raise bad_request(WRONG_FILE_ID)
    return Upload(existing=stored)


def _clean_file_name(name: str | None) -> str | None:
    if not name:
        return None
    base = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    return base[:255] or None


def prepare_upload(
    upload: Upload,
    kind: str,
    *,
    max_upload_bytes: int,
    max_photo_bytes: int,
    attributes: dict[str, Any] | None = None,
) -> StoredFile | dict[str, Any]:
    """Validate an upload as a ``kind`` file without storing it.

    Returns the existing file for a reused ``file_id`` (which must be of the same kind), else the
    keyword arguments for :meth:`FileStore.add`. Errors follow Telegram: 413 beyond the upload
    limit, ``PHOTO_INVALID_DIMENSIONS`` and ``IMAGE_PROCESS_FAILED`` for photos it would refuse.
    """
    if upload.existing is not None:
        if upload.existing.kind != kind:
            raise bad_request(
                f"can't use file of type {upload.existing.kind.title()} as {kind.title()}"
            )
        return upload.existing
    if not upload.data:
        raise bad_request("file must be non-empty")
    if len(upload.data) > max_upload_bytes:
        raise ApiError(413, "Request Entity Too Large")
    if kind == "photo":
        if len(upload.data) > max_photo_bytes:
            raise bad_request(f"photo is too big: at most {max_photo_bytes} bytes")
        size = image_size(upload.data)
        if size is None:
            raise bad_request("IMAGE_PROCESS_FAILED")
        width, height = size
        if (
            width <= 0
            or height <= 0
            or width + height > 10_000
            or max(width, height) > 20 * min(width, height)
        ):
            raise bad_request("PHOTO_INVALID_DIMENSIONS")
        return {
            "kind": "photo",
            "data": upload.data,
            "file_name": None,
            "mime_type": "image/jpeg"
            if upload.data[:2] == b"\xff\xd8"
            else _image_mime(upload.data),
            "width": width,
            "height": height,
        }
    if kind == "sticker":
        return _prepare_sticker(upload)
    if kind != "document":
        return {
            "kind": kind,
            "data": upload.data,
            "file_name": upload.file_name,
            "mime_type": upload.mime_type or DEFAULT_MIME[kind],
            **(attributes or {}),
        }
    return {
        "kind": "document",
        "data": upload.data,
        "file_name": upload.file_name or "file",
        "mime_type": upload.mime_type or "application/octet-stream",
    }


DEFAULT_MIME = {"video": "video/mp4", "audio": "audio/mpeg", "voice": "audio/ogg"}


def _prepare_sticker(upload: Upload) -> dict[str, Any]:
    """A WebP/PNG image (static), a gzipped Lottie .tgs (animated) or a WebM (video) sticker."""
    size = image_size(upload.data)
    if size is not None:
        width, height = size
        sticker_format, mime = "static", "image/webp"
    elif upload.data[:2] == b"\x1f\x8b":
        (width, height), sticker_format, mime = (512, 512), "animated", "application/x-tgsticker"
    elif upload.data[:4] == b"\x1a\x45\xdf\xa3":
        (width, height), sticker_format, mime = (512, 512), "video", "video/webm"
    else:
        raise bad_request("wrong file type: a sticker must be a WEBP, PNG, TGS or WEBM file")
    return {
        "kind": "sticker",
        "data": upload.data,
        "file_name": None,
        "mime_type": mime,
        "width": width,
        "height": height,
        "sticker_format": sticker_format,
    }


def media_attributes(params: Params, kind: str) -> dict[str, Any]:
    """The optional fields a video, audio or voice upload declares (Telegram does not probe)."""
    names = {
        "video": ("duration", "width", "height"),
        "audio": ("duration",),
        "voice": ("duration",),
    }
    attributes: dict[str, Any] = {}
    for name in names.get(kind, ()):
        value = params.integer(name)
        if value is not None and not 0 <= value <= 10_000_000:
            raise bad_request(f"wrong {name} specified")
        attributes[name] = value or 0
    if kind == "audio":
        for name in ("performer", "title"):
            value = params.string(name, max_len=256)
            if value:
                attributes[name] = value
    return attributes


def _image_mime(data: bytes) -> str:
    if data[:4] == b"\x89PNG":
        return "image/png"
    if data[:3] == b"GIF":
        return "image/gif"
    return "image/webp"


def commit_upload(store: FileStore, prepared: StoredFile | dict[str, Any]) -> StoredFile:
    """Store what :func:`prepare_upload` accepted (a reused file is returned as is)."""
    if isinstance(prepared, StoredFile):
        return prepared
    return store.add(**prepared)


def caption_and_entities(params: Params) -> tuple[str, list[dict[str, Any]]]:
    """``caption`` with ``parse_mode``/``caption_entities``; empty when absent."""
    caption = params.string("caption") or ""
    if not caption:
        return "", []
    parse_mode = params.string("parse_mode")
    if parse_mode:
        caption, entities = render_text(caption, parse_mode)
    else:
        raw = params.json_list("caption_entities", error="can't parse entities JSON object")
        entities = list(raw) if raw else detect_entities(caption)
    if len(caption) > MAX_CAPTION_LENGTH:
        raise bad_request("message caption is too long")
    return caption, entities


# ------------------------------------------------------------------------ Bot API


async def _send_media(call: Call, kind: str) -> dict[str, Any]:
    p, state = call.params, call.state
    conv = state.conversation_for_bot(call.bot, p.chat_ref())
    upload = read_upload(state.files, p, kind)
    # Stickers have no caption (Telegram ignores one).
    caption, entities = caption_and_entities(p) if kind != "sticker" else ("", [])
    p.string("emoji")
    markup = _reply_markup(p)
    reply_to = _reply_target(p, conv)
    p.boolean("disable_notification")
    p.boolean("protect_content")
    limits = state.limits
    prepared = prepare_upload(
        upload,
        kind,
        max_upload_bytes=limits.max_upload_bytes,
        max_photo_bytes=limits.max_photo_bytes,
        attributes=media_attributes(p, kind),
    )
    # Everything is validated and the rate limit is last, so a refused call stores nothing.
    state.check_can_send(call.bot, conv)
    stored = commit_upload(state.files, prepared)
    record = state.add_message(
        conv,
        sender_kind="bot",
        sender_id=call.bot.id,
        text=caption,
        entities=entities,
        reply_markup=markup,
        reply_to_message_id=reply_to,
        media_kind=kind,
        media=stored.media_api(),
    )
    return state.message_api(conv, record)


@method("sendPhoto")
async def send_photo(call: Call) -> dict[str, Any]:
    return await _send_media(call, "photo")


@method("sendDocument")
async def send_document(call: Call) -> dict[str, Any]:
    return await _send_media(call, "document")


@method("sendVideo")
async def send_video(call: Call) -> dict[str, Any]:
    return await _send_media(call, "video")


@method("sendAudio")
async def send_audio(call: Call) -> dict[str, Any]:
    return await _send_media(call, "audio")


@method("sendVoice")
async def send_voice(call: Call) -> dict[str, Any]:
    return await _send_media(call, "voice")


@method("sendSticker")
async def send_sticker(call: Call) -> dict[str, Any]:
    return await _send_media(call, "sticker")


GROUPABLE = {"photo": "visual", "video": "visual", "document": "document", "audio": "audio"}


@method("sendMediaGroup")
async def send_media_group(call: Call) -> list[dict[str, Any]]:
    """2-10 photos and videos, or documents only, or audio only, sent as one album.

    Every item is validated before anything is stored, so a bad item sends nothing.
    """
    p, state = call.params, call.state
    conv = state.conversation_for_bot(call.bot, p.chat_ref())
    items = p.json_list("media", error="can't parse media JSON object")
    if items is None or not 2 <= len(items) <= 10:
        raise bad_request("media must be an Array of 2-10 InputMedia objects")
    reply_to = _reply_target(p, conv)
    p.boolean("disable_notification")
    p.boolean("protect_content")
    prepared_items = []
    families = set()
    for item in items:
        if not isinstance(item, dict) or item.get("type") not in GROUPABLE:
            raise bad_request(
                "can't parse InputMedia: type must be photo, video, document or audio"
            )
        kind = item["type"]
        families.add(GROUPABLE[kind])
        sub = Params(item)
        upload = read_upload_value(state.files, p, item.get("media"), "media")
        caption, entities = caption_and_entities(sub)
        prepared = prepare_upload(
            upload,
            kind,
            max_upload_bytes=state.limits.max_upload_bytes,
            max_photo_bytes=state.limits.max_photo_bytes,
            attributes=media_attributes(sub, kind),
        )
        prepared_items.append((kind, prepared, caption, entities))
    if len(families) > 1:
        raise bad_request(
            "documents and audio files can't be mixed with other media types in a media group"
        )
    state.check_can_send(call.bot, conv)
    group_id = str(secrets.randbits(62))
    results = []
    for n, (kind, prepared, caption, entities) in enumerate(prepared_items):
        stored = commit_upload(state.files, prepared)
        record = state.add_message(
            conv,
            sender_kind="bot",
            sender_id=call.bot.id,
            text=caption,
            entities=entities,
            reply_to_message_id=reply_to if n == 0 else None,
            media_kind=kind,
            media=stored.media_api(),
            media_group_id=group_id,
        )
        results.append(state.message_api(conv, record))
    return results


@method("getFile")
async def get_file(call: Call) -> dict[str, Any]:
    file_id = call.params.string("file_id")
    if not file_id:
        raise bad_request("file_id is empty")
    stored = call.state.files.get(file_id)
    if stored is None:
        raise bad_request("invalid file_id")
    if len(stored.data) > call.state.limits.max_download_bytes:
        raise bad_request("file is too big")
    return {
        "file_id": stored.file_id,
        "file_unique_id": stored.file_unique_id,
        "file_size": len(stored.data),
        "file_path": stored.file_path,
    }


def file_response(stored: StoredFile, *, attachment: bool) -> web.Response:
    """The file's bytes; documents as attachments so a browser never renders them as a page."""
    headers = {
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox; default-src 'none'",
        "Cache-Control": "private, max-age=3600",
    }
    if attachment:
        name = stored.file_name or stored.file_path.rsplit("/", 1)[-1]
        safe = PATH_SAFE.sub("_", name) or "file"
        headers["Content-Disposition"] = f'attachment; filename="{safe}"'
    content_type = stored.mime_type or "application/octet-stream"
    if stored.kind == "document":
        # Never let a browser interpret an uploaded document as active content.
        content_type = "application/octet-stream" if attachment else content_type
    return web.Response(body=stored.data, content_type=content_type, headers=headers)


# ------------------------------------------------------------------------ control API

routes = web.RouteTableDef()


@routes.post("/control/bots/{username}/files")
async def user_sends_file(request: web.Request) -> web.Response:
    """A person sends a photo or document (``multipart/form-data``).

    Fields: ``user_id`` (required), ``kind`` (``photo`` or ``document``, required), ``file``
    (required), optional ``caption``, ``chat_id`` (a group id), ``first_name``. Returns the
    message; the bot gets it as a ``message`` update.
    """
    from .control import _bot, _group_for, _json, _state  # late: control imports nothing here

    state, bot = _state(request), _bot(request)
    if request.content_type != "multipart/form-data":
        raise bad_request("send the file as multipart/form-data")
    params = Params(await read_request_params(request))
    user_id = params.integer("user_id")
    if user_id is None:
        raise bad_request('field "user_id" is required')
    kind = params.string("kind")
    if kind not in ("photo", "document"):
        raise bad_request('field "kind" must be "photo" or "document"')
    upload = read_upload(state.files, params, "file")
    caption = params.string("caption") or ""
    if len(caption) > MAX_CAPTION_LENGTH:
        raise bad_request("message caption is too long")
    chat_id = params.integer("chat_id")
    group = None
    if chat_id is not None and chat_id != user_id:
        if chat_id > 0:
            raise bad_request("chat_id must be the user's own id or a group id")
        group = _group_for(state, bot, chat_id)
    prepared = prepare_upload(
        upload,
        kind,
        max_upload_bytes=state.limits.max_upload_bytes,
        max_photo_bytes=state.limits.max_photo_bytes,
    )
    user = state.upsert_user(user_id, first_name=params.string("first_name", max_len=64))
    stored = commit_upload(state.files, prepared)
    conv, record = state.user_sends(
        bot, user, caption, group=group, media_kind=kind, media=stored.media_api()
    )
    return _json(state.message_view(conv, record), status=201)


@routes.get("/control/files/{file_id}")
async def control_file(request: web.Request) -> web.Response:
    """A stored file for the web chat: photos inline, documents as downloads."""
    from .control import STATE_KEY

    stored = request.app[STATE_KEY].files.get(request.match_info["file_id"])
    if stored is None:
        raise ApiError(404, "Not Found: unknown file")
    return file_response(stored, attachment=stored.kind != "photo")
