"""Importing product versions: files and rows together, or nothing at all."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest

from otomat.accounts.models import AuditEvent, User
from otomat.catalog import services
from otomat.catalog.errors import ArchiveError, ManifestError, ProductImportError
from otomat.catalog.models import Product, ProductVersion
from otomat.catalog.services import checksum_files, import_builtin_products, import_product
from otomat.catalog.tests.conftest import MANIFEST, make_tar, make_zip, write_product

pytestmark = pytest.mark.django_db

REPO = Path(__file__).resolve().parents[3]


def stored_files(settings) -> list[str]:
    root = Path(settings.PRODUCTS_DIR)
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_it_imports_a_folder(product, settings):
    owner = User.objects.create_superuser(email="owner@example.com", password="x")
    version = import_product(product, actor=owner)

    assert version.product.slug == "echo"
    assert version.product.name == "Echo Bot"
    assert version.product.description == "Repeats what you say."
    assert (version.version, version.runtime, version.entry) == (
        "1.0.0",
        "process",
        "echo.bot:build_router",
    )
    assert (version.memory_mb, version.health_check) == (128, "updates")
    assert version.config_schema["required"] == ["bot_token"]
    assert version.manifest["product"]["slug"] == "echo"
    assert version.created_by == owner
    assert version.source_dir == "echo/1.0.0"
    assert version.source_path == Path(settings.PRODUCTS_DIR) / "echo" / "1.0.0"
    assert stored_files(settings) == [
        "echo/1.0.0/config.schema.json",
        "echo/1.0.0/echo/__init__.py",
        "echo/1.0.0/echo/bot.py",
        "echo/1.0.0/otomat.toml",
    ]
    assert version.checksum == checksum_files(version.source_path)
    assert len(version.checksum) == 64


def test_imported_files_are_read_only(product):
    version = import_product(product, actor=None)
    for path in [version.source_path, *version.source_path.rglob("*")]:
        assert stat.S_IMODE(path.stat().st_mode) & 0o222 == 0, path


def test_it_records_an_audit_event(product):
    owner = User.objects.create_superuser(email="owner@example.com", password="x")
    version = import_product(product, actor=owner)
    event = AuditEvent.objects.get(action="product.imported")
    assert event.actor == owner
    assert event.target_id == str(version.pk)
    assert event.data == {
        "slug": "echo",
        "version": "1.0.0",
        "checksum": version.checksum,
        "files": 4,
        "source": "folder",
        "name": "echo",
    }


def test_it_skips_caches_and_vcs_folders(product, settings):
    (product / "__pycache__").mkdir()
    (product / "__pycache__" / "bot.cpython-311.pyc").write_bytes(b"\0")
    (product / ".git").mkdir()
    (product / ".git" / "HEAD").write_text("ref")
    checksum_before = checksum_files(product)
    version = import_product(product, actor=None)
    assert not any("__pycache__" in f or ".git" in f for f in stored_files(settings))
    assert version.checksum == checksum_before


@pytest.mark.parametrize("kind", ["tar.gz", "zip"])
def test_it_imports_an_archive(tmp_path, product, settings, kind):
    if kind == "zip":
        archive = make_zip(tmp_path / "echo.zip", product, prefix="echo/")
    else:
        archive = make_tar(tmp_path / "echo.tar.gz", product)
    version = import_product(archive, actor=None)
    assert version.version == "1.0.0"
    assert "echo/1.0.0/otomat.toml" in stored_files(settings)
    # The same files give the same checksum whichever way they arrived.
    assert version.checksum == checksum_files(product)
    assert AuditEvent.objects.get().data["source"] == "archive"


def test_the_newest_import_names_the_product(tmp_path):
    import_product(write_product(tmp_path / "v1"), actor=None)
    text = MANIFEST.replace('"1.0.0"', '"1.1.0"').replace("Echo Bot", "Echo Bot Pro")
    import_product(write_product(tmp_path / "v2", manifest=text), actor=None)
    product = Product.objects.get()
    assert product.name == "Echo Bot Pro"
    assert list(product.versions.values_list("version", flat=True).order_by("id")) == [
        "1.0.0",
        "1.1.0",
    ]
    assert product.latest_version().version == "1.1.0"


def test_it_refuses_a_duplicate_version_and_stores_nothing(product, settings):
    import_product(product, actor=None)
    files_before = stored_files(settings)
    (product / "echo" / "bot.py").write_text("# changed without a version bump\n")
    with pytest.raises(ProductImportError) as excinfo:
        import_product(product, actor=None)
    assert str(excinfo.value) == (
        "echo 1.0.0 is already imported; bump [product].version to ship a change"
    )
    assert stored_files(settings) == files_before
    assert ProductVersion.objects.count() == 1
    assert AuditEvent.objects.count() == 1


def test_a_race_on_the_same_version_is_refused_cleanly(product, settings, monkeypatch):
    """Two imports pass the early duplicate check; the unique constraint decides."""
    import_product(product, actor=None)
    monkeypatch.setattr(services, "_refuse_duplicate", lambda manifest: None)
    with pytest.raises(ProductImportError, match="already imported"):
        import_product(product, actor=None)
    assert ProductVersion.objects.count() == 1
    assert len(stored_files(settings)) == 4  # the first import's files, untouched


def test_a_bad_manifest_stores_nothing(tmp_path, settings):
    folder = write_product(tmp_path / "p", manifest=MANIFEST.replace('"1.0.0"', '"1.x"'))
    with pytest.raises(ManifestError):
        import_product(folder, actor=None)
    assert stored_files(settings) == []
    assert not Product.objects.exists()


def test_a_bad_archive_stores_nothing(tmp_path, settings, product):
    archive = make_tar(tmp_path / "evil.tar.gz", product, prefix="../")
    with pytest.raises(ArchiveError, match=r"'\.\.' in a path"):
        import_product(archive, actor=None)
    assert stored_files(settings) == []
    assert not Product.objects.exists()


def test_a_failure_inside_the_transaction_stores_nothing(product, settings, monkeypatch):
    def broken_audit(*args, **kwargs):
        raise RuntimeError("the audit log is down")

    monkeypatch.setattr(services, "record_audit", broken_audit)
    with pytest.raises(RuntimeError):
        import_product(product, actor=None)
    assert stored_files(settings) == []
    assert not Product.objects.exists()
    assert not ProductVersion.objects.exists()


def test_a_failure_after_the_files_moved_in_removes_them(product, settings, monkeypatch):
    def broken(path):
        raise OSError("disk full")

    monkeypatch.setattr(services, "_make_read_only", broken)
    with pytest.raises(OSError, match="disk full"):
        import_product(product, actor=None)
    assert stored_files(settings) == []
    assert not (Path(settings.PRODUCTS_DIR) / "echo").exists()
    assert not ProductVersion.objects.exists()


def test_a_leftover_folder_from_a_crash_is_replaced(product, settings):
    leftover = Path(settings.PRODUCTS_DIR) / "echo" / "1.0.0"
    leftover.mkdir(parents=True)
    (leftover / "stale.txt").write_text("from a crash between rename and commit")
    version = import_product(product, actor=None)
    assert not (version.source_path / "stale.txt").exists()
    assert version.checksum == checksum_files(version.source_path)


def test_it_refuses_a_symlink_in_a_folder(product, settings, tmp_path):
    (tmp_path / "host-secret").write_text("secret")
    (product / "config.link").symlink_to(tmp_path / "host-secret")
    with pytest.raises(ProductImportError, match=r"Refused config\.link: symbolic links"):
        import_product(product, actor=None)
    assert stored_files(settings) == []


def test_it_applies_the_size_limits_to_folders(product, settings):
    settings.PRODUCT_MAX_FILES = 2
    with pytest.raises(ProductImportError, match="more than 2 files"):
        import_product(product, actor=None)


def test_a_missing_source_is_refused(tmp_path):
    with pytest.raises(ProductImportError, match="does not exist"):
        import_product(tmp_path / "nowhere", actor=None)


def test_builtin_products_are_imported_once():
    imported = import_builtin_products()
    assert "greeter" in {v.product.slug for v in imported}
    assert import_builtin_products() == []
    assert ProductVersion.objects.filter(product__slug="greeter").count() == 1


def test_a_broken_builtin_product_does_not_stop_the_others(tmp_path, caplog):
    products = tmp_path / "sources"
    write_product(products / "echo")
    write_product(products / "broken", manifest=MANIFEST.replace('"echo"', '"Broken!"'))
    (products / "README.md").parent.mkdir(exist_ok=True)
    (products / "README.md").write_text("not a product")
    with caplog.at_level(logging.ERROR, logger="otomat.catalog.services"):
        imported = import_builtin_products(products_dir=products)
    assert [v.product.slug for v in imported] == ["echo"]
    assert "Built-in product broken was not imported: [product].slug" in caplog.text
    with pytest.raises(ManifestError):
        import_builtin_products(products_dir=products, strict=True)
