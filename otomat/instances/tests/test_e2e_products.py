"""The first-party products end to end, through the web UI, the real runner and the emulator, in
both runtimes: the Movie Search Bot's install form tells which site is readable; it answers a
search (and a typo); its answer is deleted on time even though the platform restarted between
the answer and the deletion."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest
from django.urls import reverse

from otomat.catalog.services import import_product
from otomat.instances.models import Instance
from otomat.runtime.logs import tail
from otomat.testing.processes import wait_until

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[3]
RUNTIMES = ["process", "shared"]


def import_variant(slug: str, runtime: str, tmp_path: Path):
    """The product from products/ imported with ``runtime`` (the manifest names one)."""
    folder = tmp_path / "variants" / slug
    shutil.copytree(
        REPO / "products" / slug, folder, ignore=shutil.ignore_patterns("tests", "__pycache__")
    )
    manifest = folder / "otomat.toml"
    text = re.sub(r'(?m)^runtime = ".*"$', f'runtime = "{runtime}"', manifest.read_text())
    manifest.write_text(text)
    return import_product(folder, actor=None)


def message(emulator, bot: str, chat_id: int, message_id: int) -> dict | None:
    payload = emulator.client.get(
        f"/control/bots/{bot}/chats/{chat_id}/messages", params={"after": message_id - 1}
    ).json()
    messages = payload if isinstance(payload, list) else payload.get("messages", [])
    return next((m for m in messages if m["message_id"] == message_id), None)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_movie_search_answers_and_deletes_across_a_platform_restart(
    runtime, client, cast, emulator, runner_factory, live_server, tmp_path
):
    version = import_variant("movie-search", runtime, tmp_path)
    token = emulator.create_bot("films_bot")
    runner = runner_factory()
    client.force_login(cast.alice)
    blog = f"{live_server.url}/demo/blog/"
    fields = {
        "instance_name": "Films",
        "bot_token": token,
        "auto_delete_minutes": "0.1",
        "reindex_hours": "6",
        "results_per_page": "5",
        "language": "en",
        "admins": "alice_admin",
    }

    # The form tells at once which site is readable (and how) and which is not (and why).
    refused = client.post(
        reverse("instances:install", args=["movie-search"]),
        {**fields, "sites": f"{blog}\nhttp://127.0.0.1:9/"},
    )
    assert refused.status_code == 400
    page = refused.content.decode()
    assert "WordPress API" in page and "http://127.0.0.1:9/" in page
    assert not Instance.objects.exists()

    response = client.post(
        reverse("instances:install", args=["movie-search"]), {**fields, "sites": blog}
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    instance = Instance.objects.get()
    assert instance.version == version

    def running() -> bool:
        instance.refresh_from_db()
        return instance.state == Instance.State.RUNNING

    def bot_log() -> str:
        instance.refresh_from_db()
        pending = emulator.client.get("/control/bots/films_bot/updates").text[:1500]
        return (
            "\n".join(tail(instance.log_path, 40))
            + f"\nupdates handled: {instance.updates_handled}, pending: {pending}"
            + "\nrunner:\n"
            + runner.output()
        )

    wait_until(running, 60, message=f"not running; runner said:\n{runner.output()}")

    def search(text: str) -> dict:
        """Ask until the answer lists the film: the first index run may still be going."""
        seen: list[str] = []

        def found():
            sent = emulator.say("films_bot", text, user_id=501)
            replies = emulator.bot_replies("films_bot", 501, sent["message_id"], wait=5)
            seen[:] = [r.get("text", "") for r in replies]
            return next((r for r in replies if "Matrix" in r.get("text", "")), None)

        return wait_until(
            found,
            60,
            interval=1,
            message=f"no answer to {text!r} (got {seen}); bot log:\n{bot_log()}",
        )

    answer = search("/search matrix")
    assert "The Matrix (1999)" in answer["text"]
    assert "The Matrix" in search("/search matirx")["text"]  # typo tolerant
    if runtime == "shared":
        # Shared hosts keep instance data namespaced in the platform database.
        from otomat.botdata.models import Job

        assert Job.objects.filter(instance_id=str(instance.id), kind="reindex").exists()

    # The platform restarts (runner killed) before the answer's auto-delete time (6 s)...
    runner.kill()
    runner = runner_factory()
    # ... and the answer still disappears.
    wait_until(
        lambda: (message(emulator, "films_bot", 501, answer["message_id"]) or {}).get("deleted"),
        60,
        message=f"answer never deleted; bot log:\n{bot_log()}",
    )


class Flaky:
    """A local site whose health endpoint answers 200 or 503 on demand."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.status = 200
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(owner.status)
                self.end_headers()
                self.wfile.write(b"ok" if owner.status == 200 else b"down")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/health"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_alert_bot_alerts_once_per_change(
    runtime, client, cast, emulator, runner_factory, tmp_path
):
    import_variant("alert-bot", runtime, tmp_path)
    site = Flaky()
    try:
        token = emulator.create_bot("watch_bot")
        runner = runner_factory()
        client.force_login(cast.charlie)
        response = client.post(
            reverse("instances:install", args=["alert-bot"]),
            {
                "instance_name": "Watcher",
                "bot_token": token,
                "sources": f"up {site.url} every 10",
                "admins": "",
                "public_subscriptions": "on",
                "min_interval_seconds": "10",
                "fetch_timeout_seconds": "5",
                "max_page_kb": "256",
                "send_rate_per_second": "20",
            },
        )
        assert response.status_code == 302, response.content.decode()[:3000]
        instance = Instance.objects.get()

        def log() -> str:
            return "\n".join(tail(instance.log_path, 40)) + "\nrunner:\n" + runner.output()

        def running() -> bool:
            instance.refresh_from_db()
            return instance.state == Instance.State.RUNNING

        wait_until(running, 60, message=f"not running:\n{log()}")
        assert emulator.ask("watch_bot", "/subscribe", user_id=601, timeout=30) is not None
        last = emulator.say("watch_bot", "/sources", user_id=601)["message_id"]

        def alerts_after(message_id: int) -> list[str]:
            replies = emulator.bot_replies("watch_bot", 601, message_id, wait=1)
            return [r["text"] for r in replies if site.url in r.get("text", "")]

        site.status = 503
        wait_until(
            lambda: any("DOWN" in t for t in alerts_after(last)),
            40,
            message=f"no down alert:\n{log()}",
        )
        # Still down at the next check (every 10 s): no repeated alert.
        time.sleep(12)
        [down] = [t for t in alerts_after(last) if "DOWN" in t]
        assert down.startswith(f"🔴 DOWN: {site.url}") and "503" in down
        site.status = 200
        wait_until(
            lambda: any("UP again" in t for t in alerts_after(last)),
            40,
            message=f"no recovery alert:\n{log()}",
        )
        assert len([t for t in alerts_after(last) if "UP again" in t]) == 1
    finally:
        site.close()
