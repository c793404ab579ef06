"""Catalog test helpers: a small product folder to bend into every shape, archives built from
it, and a local fake of the Bot API's getMe speaking real HTTP."""

from __future__ import annotations

import io
import json
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

MANIFEST = """\
[product]
slug = "echo"
name = "Echo Bot"
description = "Repeats what you say."
version = "1.0.0"
runtime = "process"
entry = "echo.bot:build_router"

[config]
schema = "config.schema.json"

[resources]
memory_mb = 128

[health]
check = "updates"
"""

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["bot_token"],
    "properties": {
        "bot_token": {
            "type": "string",
            "title": "Bot token",
            "x-otomat-secret": True,
            "x-otomat-check": "telegram_token",
        },
        "greeting": {"type": "string", "default": "Hi"},
    },
}


def write_product(
    folder: Path,
    *,
    manifest: str = MANIFEST,
    schema: dict | str | None = None,
    files: dict[str, str] | None = None,
) -> Path:
    """Create a product folder (a valid one unless told otherwise); returns it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "otomat.toml").write_text(manifest)
    schema = SCHEMA if schema is None else schema
    (folder / "config.schema.json").write_text(
        schema if isinstance(schema, str) else json.dumps(schema)
    )
    default_files = {"echo/__init__.py": "", "echo/bot.py": "def build_router():\n    pass\n"}
    for name, text in {**default_files, **(files or {})}.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


def make_tar(path: Path, folder: Path, *, prefix: str = "", mode: str = "w:gz") -> Path:
    """Pack ``folder``'s files into a tar archive, under ``prefix/`` when given."""
    with tarfile.open(path, mode) as tar:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                tar.add(file, arcname=f"{prefix}{file.relative_to(folder).as_posix()}")
    return path


def make_zip(path: Path, folder: Path, *, prefix: str = "") -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                zf.write(file, f"{prefix}{file.relative_to(folder).as_posix()}")
    return path


def add_tar_member(tar: tarfile.TarFile, name: str, data: bytes = b"", **attrs) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for key, value in attrs.items():
        setattr(info, key, value)
    tar.addfile(info, io.BytesIO(data) if info.isfile() else None)


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """The cast's passwords are hashed once per test; the real hasher makes that ~1 s."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def product(tmp_path) -> Path:
    """A valid product folder."""
    return write_product(tmp_path / "src" / "echo")


class FakeBotApi:
    """``GET /bot<token>/getMe`` like Telegram: 200 with the bot for a known token, 401 JSON
    otherwise. ``requests`` records the paths asked for."""

    def __init__(self) -> None:
        self.bots: dict[str, str] = {}
        self.requests: list[str] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                api.requests.append(self.path)
                token = self.path.removeprefix("/bot").rsplit("/", 1)[0]
                if self.path.endswith("/getMe") and token in api.bots:
                    status, body = (
                        200,
                        {
                            "ok": True,
                            "result": {"id": 1, "is_bot": True, "username": api.bots[token]},
                        },
                    )
                else:
                    status, body = (
                        401,
                        {"ok": False, "error_code": 401, "description": "Unauthorized"},
                    )
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args) -> None:  # keep test output quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def add_bot(self, username: str) -> str:
        token = f"{1000 + len(self.bots)}:AAH{username.upper()}secretsecretsecretsecret"
        self.bots[token] = username
        return token

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def bot_api(settings):
    api = FakeBotApi()
    settings.BOT_API_URL = api.url
    yield api
    api.close()
