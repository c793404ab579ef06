"""A bot that keeps crashing is restarted with backoff, then shown as failed with its last log
lines; starting it again gives it a fresh chance."""

from __future__ import annotations

import textwrap
import time

import pytest
from django.urls import reverse

from otomat.catalog.services import import_product
from otomat.instances.models import Instance
from otomat.testing.processes import wait_until

pytestmark = pytest.mark.slow


@pytest.fixture
def crashing_product(tmp_path):
    folder = tmp_path / "src" / "crasher"
    folder.mkdir(parents=True)
    (folder / "otomat.toml").write_text(
        textwrap.dedent("""
        [product]
        slug = "crasher"
        name = "Crasher"
        description = "Dies right after starting."
        version = "0.1.0"
        runtime = "process"
        command = ["python3", "main.py"]
        [resources]
        memory_mb = 64
        [health]
        check = "process"
    """)
    )
    (folder / "main.py").write_text(
        textwrap.dedent("""
        import sys
        print("connecting to the database", flush=True)
        print("fatal: database at db.internal:3306 is unreachable", file=sys.stderr, flush=True)
        sys.exit(1)
    """)
    )
    return import_product(folder, actor=None)


def test_a_crashing_bot_ends_failed_with_its_last_log_lines(
    client, cast, crashing_product, runner_factory, settings
):
    settings.RUNTIME_BACKOFF_SECONDS = 0.1
    settings.RUNTIME_CRASH_LOOP_EXITS = 3
    runner = runner_factory()
    client.force_login(cast.alice)
    response = client.post(
        reverse("instances:install", args=["crasher"]), {"instance_name": "doomed"}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    instance = Instance.objects.get()

    def failed() -> bool:
        instance.refresh_from_db()
        return instance.state == Instance.State.FAILED

    wait_until(failed, 40, message=f"never failed; runner said:\n{runner.output()}")
    assert instance.restarts >= 2
    assert "database at db.internal:3306 is unreachable" in instance.status_message
    page = client.get(reverse("instances:detail", args=[instance.id])).content.decode()
    assert "kept crashing" in page and "is unreachable" in page
    assert instance.events.filter(to_state="failed", actor_label="system:runner").exists()

    # The runner leaves a failed instance alone (no endless restarts) ...
    before = (instance.restarts, instance.events.count())
    time.sleep(3)  # longer than a reconcile period (2 s in tests)
    instance.refresh_from_db()
    assert (instance.state, instance.restarts, instance.events.count()) == ("failed", *before)

    # ... until a person starts it again.
    client.post(reverse("instances:action", args=[instance.id, "start"]))
    instance.refresh_from_db()
    assert instance.state == Instance.State.PROVISIONING
    wait_until(failed, 40, message="second chance did not run")
