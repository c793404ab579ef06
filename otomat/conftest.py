"""Fixtures shared by every app's tests: a fixed cast of people (alice and her teammate bob,
charlie from another account who must see nothing, staff and the owner), isolated data
directories, the product catalog, and real emulator and runner processes."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PASSWORD = "correct-horse-battery-9"


def pytest_configure(config):
    # Translations are compiled by the setup commands; do it here too so a bare `pytest` works.
    from otomat.lib.i18n import compile_catalogs

    compile_catalogs()


DATABASE_FIXTURES = {"db", "transactional_db", "django_db_reset_sequences", "live_server"}


def pytest_collection_modifyitems(config, items):
    """``OTOMAT_TEST_DATABASE_ONLY=1`` (the PostgreSQL pass of scripts/test): keep only the tests
    that use the database. The others (the emulator, the SDK, products, pure functions) give
    the same result whatever the database is, and the SQLite pass has run them."""
    import os

    if os.environ.get("OTOMAT_TEST_DATABASE_ONLY") != "1":
        return
    kept, dropped = [], []
    for item in items:
        uses_db = DATABASE_FIXTURES & set(getattr(item, "fixturenames", ()))
        (kept if uses_db or item.get_closest_marker("django_db") else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(autouse=True)
def _isolated_dirs(request, tmp_path):
    """Every test writes products, instance data, logs and sockets under its own tmp_path."""
    if not request.config.pluginmanager.hasplugin("django"):
        yield
        return
    settings = request.getfixturevalue("settings")
    # Real password hashing costs ~1 s per person in the cast; it is not what tests check.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Staff in the cast sign in with force_login, which has no second factor; the two-factor
    # tests (accounts/tests/test_two_factor.py) turn the requirement back on.
    settings.REQUIRE_STAFF_2FA = False
    # A runner started by a test keeps no spare shared host waiting (a whole imported host
    # process per runner): the tests of spare hosts ask for one.
    settings.SHARED_SPARE_HOSTS = 0
    for name in ("PRODUCTS_DIR", "INSTANCES_DIR", "LOGS_DIR", "RUN_DIR"):
        path = tmp_path / name.removesuffix("_DIR").lower()
        path.mkdir()
        setattr(settings, name, path)
    yield


@pytest.fixture
def cast(db):
    from otomat.accounts.models import Account, Membership, User
    from otomat.accounts.services import add_member, create_owner, sign_up

    alice = sign_up(
        email="alice@example.com",
        password=PASSWORD,
        full_name="Alice Anders",
        account_name="Alice's Bots",
    )
    bob = add_member(alice.account, email="bob@example.com", full_name="Bob Berg", actor=alice)
    bob.set_password(PASSWORD)
    bob.save()
    charlie = sign_up(
        email="charlie@example.com",
        password=PASSWORD,
        full_name="Charlie Chen",
        account_name="Charlie Corp",
    )
    staff = User.objects.create_user(email="staff@example.com", password=PASSWORD, is_staff=True)
    owner = create_owner(email="owner@example.com", password=PASSWORD)

    class Cast:
        pass

    c = Cast()
    c.alice, c.bob, c.charlie, c.staff, c.owner = alice, bob, charlie, staff, owner
    c.password = PASSWORD
    assert Membership.objects.filter(account=alice.account).count() == 2
    assert Account.objects.count() == 2
    return c


@pytest.fixture
def greeter(db):
    """The greeter product imported into this test's PRODUCTS_DIR."""
    from otomat.catalog.services import import_product

    return import_product(REPO / "products" / "greeter", actor=None)


@pytest.fixture
def emulator(tmp_path, settings):
    from otomat.testing.processes import Emulator

    emu = Emulator(tmp_path / "tgemu.json")
    settings.BOT_API_URL = emu.url
    settings.EMULATOR_URL = settings.EMULATOR_PUBLIC_URL = emu.url
    yield emu
    emu.close()


@pytest.fixture
def runner_factory(transactional_db, tmp_path, settings, emulator):
    """Start (and restart) real ``otomat runner`` processes; all stopped at teardown."""
    from otomat.testing.processes import RunnerProcess

    settings.RUNNER_RECONCILE_SECONDS = 2
    started: list[RunnerProcess] = []

    def start() -> RunnerProcess:
        runner = RunnerProcess(tmp_path).start()
        started.append(runner)
        return runner

    yield start
    for runner in started:
        runner.stop()


@pytest.fixture
def browser_page(live_server, monkeypatch):
    """A headless Chromium page (Debian's, driven by Playwright); skips without Chromium."""
    from otomat.testing.browser import CHROMIUM, CHROMIUM_ARGS

    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (apt-get install chromium); browser test skipped")
    sync_api = pytest.importorskip("playwright.sync_api")
    # Playwright's sync API runs an event loop in this thread; the ORM calls made by the test
    # itself are still synchronous and safe.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.set_default_timeout(20_000)
        yield page
        browser.close()


# -- billing basics shared by the billing and support tests ----------------------------------


@pytest.fixture
def policy(db):
    from otomat.billing.models import DunningPolicy

    return DunningPolicy.objects.create(
        name="Test policy",
        invoice_days_before=7,
        reminder_days=[-3, 0, 3, 5],
        suspend_after_days=7,
        terminate_after_days=30,
        export_notice_days=3,
    )


@pytest.fixture
def ppn(db):
    from decimal import Decimal

    from otomat.billing.models import TaxRate

    return TaxRate.objects.create(name="PPN 11%", rate_percent=Decimal("11"), inclusive=True)


@pytest.fixture
def vat_pl(db):
    from decimal import Decimal

    from otomat.billing.models import TaxRate

    return TaxRate.objects.create(name="VAT 23%", rate_percent=Decimal("23"), inclusive=False)


@pytest.fixture
def plan(greeter, policy, ppn):
    from otomat.billing.models import Plan

    return Plan.objects.create(
        product=greeter.product,
        code="basic",
        name="Basic",
        currency="IDR",
        price_minor=150_000,
        period_months=1,
        setup_fee_minor=50_000,
        tax_rate=ppn,
        dunning_policy=policy,
    )
