"""Catalog pages: customers browse, staff upload, everybody else changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from otomat.accounts.models import AuditEvent
from otomat.catalog.models import Product, ProductVersion
from otomat.catalog.services import import_product
from otomat.catalog.tests.conftest import MANIFEST, make_tar, write_product

pytestmark = pytest.mark.django_db


@pytest.fixture
def echo(product):
    return import_product(product, actor=None)


@pytest.fixture
def hidden(tmp_path):
    text = MANIFEST.replace('"echo"', '"secret-project"').replace("Echo Bot", "Secret Project")
    version = import_product(write_product(tmp_path / "hidden", manifest=text), actor=None)
    Product.objects.filter(pk=version.product_id).update(is_listed=False)
    return version


def upload(client, path: Path, name: str | None = None):
    archive = SimpleUploadedFile(name or path.name, path.read_bytes())
    return client.post(reverse("catalog:upload"), {"archive": archive})


def stored_files(settings) -> list[Path]:
    return [p for p in Path(settings.PRODUCTS_DIR).rglob("*") if p.is_file()]


# --- browsing ------------------------------------------------------------------------------------


def test_customers_see_listed_products(client, cast, echo, hidden):
    client.force_login(cast.alice)
    response = client.get(reverse("catalog:list"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Echo Bot" in page
    assert "Repeats what you say." in page
    assert "Version 1.0.0" in page
    assert "Secret Project" not in page


def test_the_catalog_costs_the_same_few_queries_however_many_products(
    client, cast, echo, tmp_path, django_assert_max_num_queries
):
    """Session, user, second factor, account, the products, their latest versions: the same
    for one product and for five (a product's texts come from its version's manifest)."""
    for n in range(4):
        text = MANIFEST.replace('"echo"', f'"echo-{n}"').replace("Echo Bot", f"Echo Bot {n}")
        import_product(write_product(tmp_path / f"p{n}", manifest=text), actor=None)
    client.force_login(cast.alice)
    with django_assert_max_num_queries(6):
        page = client.get(reverse("catalog:list")).content.decode()
    assert page.count("Repeats what you say.") == 5
    assert all(f"Echo Bot {n}" in page for n in range(4)) and "Version 1.0.0" in page


def test_visitors_see_the_catalog_too(client, echo):
    assert "Echo Bot" in client.get(reverse("catalog:list")).content.decode()


def test_an_empty_catalog_says_so(client, cast):
    client.force_login(cast.alice)
    page = client.get(reverse("catalog:list")).content.decode()
    assert "No products are available yet." in page


def test_the_detail_page_offers_install(client, cast, echo):
    client.force_login(cast.alice)
    response = client.get(reverse("catalog:detail", args=["echo"]))
    assert response.status_code == 200
    page = response.content.decode()
    assert reverse("instances:install", args=["echo"]) in page
    assert "Bot token" in page and "kept secret" in page
    assert "1.0.0" in page


def test_a_hidden_product_is_only_for_staff(client, cast, hidden):
    client.force_login(cast.alice)
    assert client.get(reverse("catalog:detail", args=["secret-project"])).status_code == 404
    client.force_login(cast.staff)
    assert client.get(reverse("catalog:detail", args=["secret-project"])).status_code == 200


def test_an_unknown_product_is_404(client):
    assert client.get(reverse("catalog:detail", args=["nope"])).status_code == 404


# --- the live check --------------------------------------------------------------------------------


def check(client, field: str, value: str, slug: str = "echo"):
    return client.post(reverse("catalog:check_field", args=[slug, field]), {field: value})


def test_the_check_confirms_a_valid_token(client, cast, echo, bot_api):
    token = bot_api.add_bot("echo_bot")
    client.force_login(cast.alice)
    response = check(client, "bot_token", token)
    assert response.status_code == 200
    page = response.content.decode()
    assert "✓ @echo_bot" in page
    assert token not in page


def test_the_check_explains_a_rejected_token(client, cast, echo, bot_api):
    client.force_login(cast.alice)
    page = check(client, "bot_token", "999:AAunknownunknown").content.decode()
    assert "Telegram rejected this token (401 Unauthorized)" in page
    assert "AAunknownunknown" not in page


def test_the_check_reads_a_prefixed_field(client, cast, echo, bot_api):
    token = bot_api.add_bot("echo_bot")
    client.force_login(cast.alice)
    response = client.post(
        reverse("catalog:check_field", args=["echo", "bot_token"]), {"cfg-bot_token": token}
    )
    assert "@echo_bot" in response.content.decode()


def test_a_blank_value_clears_the_result(client, cast, echo, bot_api):
    client.force_login(cast.alice)
    response = check(client, "bot_token", "  ")
    assert response.content.decode().strip() == ""
    assert bot_api.requests == []


def test_a_control_character_is_refused_while_typing_without_a_request(client, cast, echo, bot_api):
    client.force_login(cast.alice)
    page = check(client, "bot_token", "123:AA\x1bsecret").content.decode()
    assert "This text contains a control character (U+001B), which is not allowed." in page
    assert "secret" not in page
    assert bot_api.requests == []


def test_the_check_needs_a_login(client, echo, bot_api):
    assert check(client, "bot_token", "123:abc").status_code == 403
    assert bot_api.requests == []


def test_only_checked_fields_can_be_checked(client, cast, echo):
    client.force_login(cast.alice)
    assert check(client, "greeting", "hi").status_code == 404
    assert check(client, "nope", "hi").status_code == 404
    assert client.get(reverse("catalog:check_field", args=["echo", "bot_token"])).status_code == 405


# --- staff pages ---------------------------------------------------------------------------------


def test_visitors_are_sent_to_log_in(client, tmp_path, product):
    response = upload(client, make_tar(tmp_path / "echo.tar.gz", product))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))
    assert client.get(reverse("catalog:manage")).status_code == 302
    assert not ProductVersion.objects.exists()


def test_customers_cannot_upload(client, cast, tmp_path, product, settings):
    client.force_login(cast.alice)
    assert client.get(reverse("catalog:upload")).status_code == 404
    response = upload(client, make_tar(tmp_path / "echo.tar.gz", product))
    assert response.status_code == 404
    assert client.get(reverse("catalog:manage")).status_code == 404
    assert not ProductVersion.objects.exists()
    assert not AuditEvent.objects.filter(action="product.imported").exists()
    assert stored_files(settings) == []


def test_staff_upload_a_product(client, cast, tmp_path, product):
    client.force_login(cast.staff)
    assert client.get(reverse("catalog:upload")).status_code == 200
    response = upload(client, make_tar(tmp_path / "echo-1.0.0.tar.gz", product, prefix="echo/"))
    assert response.status_code == 302
    assert response["Location"] == reverse("catalog:detail", args=["echo"])
    version = ProductVersion.objects.get()
    assert version.created_by == cast.staff
    event = AuditEvent.objects.get(action="product.imported")
    assert event.data["name"] == "echo-1.0.0.tar.gz"  # the uploaded name, not the temp file's
    page = client.get(response["Location"]).content.decode()
    assert "Echo Bot 1.0.0 was imported." in page


def test_a_bad_archive_shows_the_error_and_stores_nothing(
    client, cast, tmp_path, product, settings
):
    client.force_login(cast.staff)
    response = upload(client, make_tar(tmp_path / "evil.tar.gz", product, prefix="../"))
    assert response.status_code == 400
    assert (
        "Refused &#x27;../config.schema.json&#x27;: &#x27;..&#x27; in a path is not allowed."
        in (response.content.decode())
    )
    assert not ProductVersion.objects.exists()
    assert not Product.objects.exists()
    assert stored_files(settings) == []


def test_a_bad_manifest_shows_the_error(client, cast, tmp_path):
    client.force_login(cast.staff)
    folder = write_product(tmp_path / "p", manifest=MANIFEST.replace('"1.0.0"', '"1.x"'))
    response = upload(client, make_tar(tmp_path / "p.tgz", folder))
    assert response.status_code == 400
    assert (
        "[product].version: &#x27;1.x&#x27; is not a version like 1.2.0"
        in response.content.decode()
    )


def test_a_duplicate_upload_is_refused(client, cast, tmp_path, product, echo):
    client.force_login(cast.staff)
    response = upload(client, make_tar(tmp_path / "echo.tar.gz", product))
    assert response.status_code == 400
    assert "echo 1.0.0 is already imported; bump [product].version to ship a change" in (
        response.content.decode()
    )
    assert ProductVersion.objects.count() == 1


def test_something_that_is_not_an_archive_is_refused(client, cast, tmp_path):
    client.force_login(cast.staff)
    notes = tmp_path / "notes.zip"
    notes.write_text("hello")
    response = upload(client, notes)
    assert response.status_code == 400
    assert "This is not a .tar.gz, .tgz, .tar or .zip archive." in response.content.decode()


def test_an_oversized_upload_is_refused_before_unpacking(client, cast, tmp_path, settings):
    settings.PRODUCT_ARCHIVE_MAX_BYTES = 1024 * 1024
    client.force_login(cast.staff)
    big = tmp_path / "big.zip"
    big.write_bytes(b"\0" * (1024 * 1024 + 1))
    response = upload(client, big)
    assert response.status_code == 400
    assert "The archive is bigger than 1.0 MB, the limit." in response.content.decode()


def test_staff_see_versions_with_checksums(client, cast, echo, hidden):
    client.force_login(cast.staff)
    page = client.get(reverse("catalog:manage")).content.decode()
    assert "Echo Bot" in page and "Secret Project" in page
    assert echo.checksum in page
    assert "hidden" in page
