"""The operations command line: clear refusals with exit code 2, nothing stored on bad input."""

from __future__ import annotations

import io
import tarfile
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from otomat.accounts.models import User
from otomat.catalog.models import ProductVersion
from otomat.cli import main

REPO = Path(__file__).resolve().parents[2]


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def test_help_lists_the_commands():
    with pytest.raises(SystemExit) as exit_info:
        run("--help")
    assert exit_info.value.code == 0


def test_product_import_from_a_folder_and_twice(db):
    import tomllib

    manifest = tomllib.loads((REPO / "products" / "greeter" / "otomat.toml").read_text())
    code, out, _ = run("product", "import", str(REPO / "products" / "greeter"))
    assert code == 0 and f"Imported greeter {manifest['product']['version']}" in out
    code, _, err = run("product", "import", str(REPO / "products" / "greeter"))
    assert code == 2 and "already imported" in err
    assert ProductVersion.objects.count() == 1


def test_product_import_refuses_a_traversal_archive(db, tmp_path):
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        data = b"pwned"
        info = tarfile.TarInfo("../../etc/evil")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    code, _, err = run("product", "import", str(archive))
    assert code == 2 and err.startswith("Refused:")
    assert ProductVersion.objects.count() == 0


def test_product_import_of_a_missing_path(db, tmp_path):
    code, _, err = run("product", "import", str(tmp_path / "nope"))
    assert code == 2 and "Refused" in err


def test_createowner_refuses_a_weak_password_and_creates_with_a_good_one(db):
    code, _, err = run("createowner", "--email", "boss@example.com", "--password", "123")
    assert code == 2 and "Password refused" in err
    assert not User.objects.filter(email="boss@example.com").exists()
    code, out, _ = run(
        "createowner", "--email", "boss@example.com", "--password", "a-long-boss-passphrase"
    )
    assert "is ready" in out
    assert code == 0
    boss = User.objects.get(email="boss@example.com")
    assert boss.is_superuser and boss.is_staff and boss.check_password("a-long-boss-passphrase")
