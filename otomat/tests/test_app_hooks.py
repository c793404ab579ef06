"""The apps above connect themselves to the apps below, which do not import them
(otomat/tests/test_layering.py): the runtime wakes its runner on instances' signal and lends
the catalog its sandbox for product checks."""

from __future__ import annotations

from otomat.catalog import product_checks
from otomat.instances import services
from otomat.runtime import notify
from otomat.runtime.backends import sandbox

TOKEN = "123456:" + "A" * 35


def test_a_committed_change_of_what_runs_wakes_the_runner(
    cast, greeter, monkeypatch, django_capture_on_commit_callbacks
):
    pokes: list[int] = []
    monkeypatch.setattr(notify, "poke_runner", lambda: pokes.append(1))
    with django_capture_on_commit_callbacks(execute=False) as pending:
        services.install_instance(
            account=cast.alice.account,
            version=greeter,
            name="g",
            config={"bot_token": TOKEN},
            actor=cast.alice,
        )
    assert pokes == []  # not before the commit
    for callback in pending:
        callback()
    assert pokes  # the runtime's receiver woke the runner


def test_product_checks_run_in_the_runtimes_sandbox():
    assert product_checks._sandbox is sandbox
