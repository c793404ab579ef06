"""The in-memory store of uploaded files, bounded by count and total bytes.

Files are not written to the state file: after a restart their ``file_id`` answers "wrong file
identifier", as an expired one would. Photos keep one size, the original: the emulator does not
resize, and reads the dimensions from the PNG, JPEG, GIF or WebP header.
"""

from __future__ import annotations

import mimetypes
import re
import secrets
import struct
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from .errors import bad_request

PATH_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


# Each kind's file_id prefix (as Telegram's look) and download folder.
FILE_KINDS = {
    "photo": ("AgAC", "photos"),
    "document": ("BQAC", "documents"),
    "video": ("BAAC", "videos"),
    "audio": ("CQAC", "music"),
    "voice": ("AwAC", "voice"),
    "sticker": ("CAAC", "stickers"),
}


@dataclass
class StoredFile:
    """One uploaded file. ``kind`` is one of :data:`FILE_KINDS`."""

    file_id: str
    file_unique_id: str
    kind: str
    data: bytes
    file_path: str
    file_name: str | None = None
    mime_type: str | None = None
    width: int = 0
    height: int = 0
    duration: int = 0  # seconds: video, audio, voice
    performer: str | None = None  # audio
    title: str | None = None  # audio
    sticker_format: str | None = None  # "static", "animated" or "video"

    def photo_size_api(self) -> dict[str, Any]:
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "width": self.width,
            "height": self.height,
            "file_size": len(self.data),
        }

    def document_api(self) -> dict[str, Any]:
        data: dict[str, Any] = {"file_id": self.file_id, "file_unique_id": self.file_unique_id}
        if self.file_name:
            data["file_name"] = self.file_name
        if self.mime_type:
            data["mime_type"] = self.mime_type
        data["file_size"] = len(self.data)
        return data

    def media_api(self) -> Any:
        """The value of the message's ``photo`` (a PhotoSize list), ``document``, ``video``,
        ``audio``, ``voice`` or ``sticker`` field, in the Bot API's shape."""
        if self.kind == "photo":
            return [self.photo_size_api()]
        if self.kind == "document":
            return self.document_api()
        data: dict[str, Any] = {"file_id": self.file_id, "file_unique_id": self.file_unique_id}
        if self.kind == "sticker":
            data.update(
                type="regular",
                width=self.width,
                height=self.height,
                is_animated=self.sticker_format == "animated",
                is_video=self.sticker_format == "video",
                file_size=len(self.data),
            )
            return data
        if self.kind == "video":
            data.update(width=self.width, height=self.height)
        data["duration"] = self.duration
        if self.kind == "audio":
            for key in ("performer", "title"):
                if getattr(self, key):
                    data[key] = getattr(self, key)
        if self.file_name and self.kind != "voice":
            data["file_name"] = self.file_name
        if self.mime_type:
            data["mime_type"] = self.mime_type
        data["file_size"] = len(self.data)
        return data


@dataclass
class FileStore:
    """Uploaded files by ``file_id``, bounded by count and total size (oldest evicted first)."""

    max_files: int = 1000
    max_total_bytes: int = 256 * 1024 * 1024
    files: OrderedDict[str, StoredFile] = field(default_factory=OrderedDict)
    total_bytes: int = 0
    _next_number: int = 0

    def get(self, file_id: str) -> StoredFile | None:
        return self.files.get(file_id)

    def by_path(self, file_path: str) -> StoredFile | None:
        return next((f for f in self.files.values() if f.file_path == file_path), None)

    def add(
        self,
        *,
        kind: str,
        data: bytes,
        file_name: str | None,
        mime_type: str | None,
        width: int = 0,
        height: int = 0,
        **attributes: Any,
    ) -> StoredFile:
        """Store ``data``; raises 400 when it alone is larger than the whole store.

        ``attributes`` are the kind's own fields (``duration``, ``performer``, ``title``,
        ``sticker_format``).
        """
        if len(data) > self.max_total_bytes:
            raise bad_request("file is too big for the emulator's file store")
        prefix, folder = FILE_KINDS[kind]
        suffix = _extension(file_name, mime_type)
        stored = StoredFile(
            file_id=prefix + secrets.token_urlsafe(48),
            file_unique_id="AQAD" + secrets.token_urlsafe(9),
            kind=kind,
            data=data,
            file_path=f"{folder}/file_{self._next_number}{suffix}",
            file_name=file_name,
            mime_type=mime_type,
            width=width,
            height=height,
            **attributes,
        )
        self._next_number += 1
        self.files[stored.file_id] = stored
        self.total_bytes += len(data)
        while len(self.files) > self.max_files or self.total_bytes > self.max_total_bytes:
            _, old = self.files.popitem(last=False)
            self.total_bytes -= len(old.data)
        return stored

    def clear(self) -> None:
        self.files.clear()
        self.total_bytes = 0


def _extension(file_name: str | None, mime_type: str | None) -> str:
    if file_name and "." in file_name:
        ext = PATH_SAFE.sub("", file_name.rsplit(".", 1)[1])[:10]
        if ext:
            return "." + ext.lower()
    guessed = mimetypes.guess_extension(mime_type or "") if mime_type else None
    return guessed or ""


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG, GIF, JPEG or WebP header, or None if it is not one of them."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return struct.unpack("<HH", data[6:10])
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and len(data) >= 30:
        chunk = data[12:16]
        if chunk == b"VP8 ":
            w, h = struct.unpack("<HH", data[26:30])
            return w & 0x3FFF, h & 0x3FFF
        if chunk == b"VP8L":
            bits = int.from_bytes(data[21:25], "little")
            return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
        if chunk == b"VP8X":
            return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(
                data[27:30], "little"
            ) + 1
        return None
    if data[:2] == b"\xff\xd8":
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                return None
            marker = data[i + 1]
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
                i += 2
                continue
            length = int.from_bytes(data[i + 2 : i + 4], "big")
            # SOF0..SOF15 carry the frame size, except DHT (C4), JPG (C8) and DAC (CC).
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                height, width = struct.unpack(">HH", data[i + 5 : i + 9])
                return width, height
            i += 2 + length
    return None
