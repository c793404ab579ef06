"""A product's own live check (``x-otomat-check: product:module:function``) runs sandboxed,
on each item of a list field, and tells which item is accepted and why another is not."""

from __future__ import annotations

import pytest
from django.urls import reverse

from otomat.catalog.errors import ManifestError
from otomat.catalog.manifest import parse_manifest
from otomat.catalog.schema_form import build_form_class
from otomat.catalog.services import import_product
from otomat.catalog.tests.conftest import write_product

CHECKER = """
import os


def check_site(value):
    if "good" in value:
        return "WordPress API · 3 posts"
    if "secret" in value:
        # The check runs sandboxed: the platform's environment is not visible.
        return "env: " + ",".join(sorted(k for k in os.environ if k.startswith("OTOMAT_SECRET")))
    if "boom" in value:
        raise RuntimeError("a bug in the product")
    raise ValueError("no WordPress API, no feed, no sitemap found")
"""

SCHEMA = {
    "type": "object",
    "properties": {
        "sites": {
            "type": "array",
            "title": "Sites",
            "items": {"type": "string"},
            "minItems": 1,
            "x-otomat-check": "product:echo.checks:check_site",
        }
    },
}


@pytest.fixture
def version(tmp_path, db):
    folder = write_product(tmp_path / "src", schema=SCHEMA, files={"echo/checks.py": CHECKER})
    return import_product(folder, actor=None)


def test_each_item_is_checked_and_named(version):
    form_class = build_form_class(version.config_schema, source_dir=version.source_path)
    form = form_class({"sites": "https://good.example\nhttps://bad.example"})
    assert not form.is_valid()
    message = " ".join(form.errors["sites"])
    assert "✗ https://bad.example: no WordPress API, no feed, no sitemap found" in message
    assert "✓ https://good.example: WordPress API · 3 posts" in message

    form = form_class({"sites": "https://good.example"})
    assert form.is_valid(), form.errors
    assert form.check_results["sites"] == "✓ https://good.example: WordPress API · 3 posts"


def test_a_crashing_check_is_reported_not_raised(version):
    form_class = build_form_class(version.config_schema, source_dir=version.source_path)
    form = form_class({"sites": "https://boom.example"})
    assert not form.is_valid()
    assert "The check failed (RuntimeError)" in " ".join(form.errors["sites"])


def test_the_check_cannot_see_platform_secrets(version, monkeypatch):
    monkeypatch.setenv("OTOMAT_SECRET_KEY", "platform-secret")
    form_class = build_form_class(version.config_schema, source_dir=version.source_path)
    form = form_class({"sites": "https://secret.example"})
    assert form.is_valid(), form.errors
    assert form.check_results["sites"].endswith("env: ")


def test_the_htmx_endpoint_checks_each_line(client, cast, version):
    client.force_login(cast.alice)
    url = reverse("catalog:check_field", args=["echo", "sites"])
    page = client.post(url, {"sites": "https://good.example\nhttps://bad.example"}).content.decode()
    assert "https://bad.example: no WordPress API" in page
    assert "https://good.example: WordPress API · 3 posts" in page


@pytest.mark.parametrize("name", ["product:", "product:echo.checks", "product:../x:y", "shell:rm"])
def test_malformed_product_check_names_are_refused(tmp_path, name):
    schema = {"type": "object", "properties": {"s": {"type": "string", "x-otomat-check": name}}}
    folder = write_product(tmp_path / "bad", schema=schema)
    with pytest.raises(ManifestError, match="not a known check"):
        parse_manifest(folder)
