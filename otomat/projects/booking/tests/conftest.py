"""The booking tests' cast: the owner hosts a 60-minute call, Monday to Friday 09:00–17:00 in
Warsaw, no buffers and no notice unless a test sets them; a local HTTP server serves the
external calendars."""

from __future__ import annotations

import threading
from datetime import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@pytest.fixture
def host(cast):
    from otomat.projects.booking.models import Host, WeeklyHours

    row = Host.objects.create(
        user=cast.owner,
        timezone="Europe/Warsaw",
        buffer_before_minutes=0,
        buffer_after_minutes=0,
        min_notice_minutes=0,
        horizon_days=120,
    )
    WeeklyHours.objects.bulk_create(
        [WeeklyHours(host=row, weekday=d, start=time(9), end=time(17)) for d in range(5)]
    )
    return row


@pytest.fixture
def call(host):
    from otomat.projects.booking.models import MeetingType

    return MeetingType.objects.create(
        host=host,
        slug="project-call",
        name="Project call",
        translations={"pl": {"name": "Rozmowa o projekcie"}, "id": {"name": "Obrolan proyek"}},
        duration_minutes=60,
        slot_step_minutes=30,
        video_link_template="https://meet.example.com/{token}",
        cutoff_hours=24,
    )


class CalendarServer:
    """A local HTTP server: ``serve(path, body, headers)`` then fetch ``url(path)``."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, bytes, dict]] = {}
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append({"path": self.path, "headers": dict(self.headers)})
                status, body, headers = server.routes.get(self.path, (404, b"not here", {}))
                if (
                    status == 200
                    and headers.get("ETag")
                    and (self.headers.get("If-None-Match") == headers["ETag"])
                ):
                    status, body = 304, b""
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                if "Content-Length" not in headers:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def serve(self, path: str, body: bytes, *, status: int = 200, headers=None) -> str:
        self.routes[path] = (status, body, dict(headers or {}))
        return self.url(path)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def calendar_server():
    server = CalendarServer()
    yield server
    server.close()
