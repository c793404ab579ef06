"""Archive extraction refuses everything unsafe and leaves nothing behind."""

from __future__ import annotations

import os
import stat
import tarfile
import tempfile
import zipfile
from pathlib import Path

import pytest

from otomat.catalog.archive import unpacked
from otomat.catalog.errors import ArchiveError
from otomat.catalog.tests.conftest import add_tar_member, make_tar, make_zip


@pytest.fixture(autouse=True)
def private_tmp(tmp_path, monkeypatch) -> Path:
    """Extraction temp dirs go to a folder we can inspect for leftovers."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def refused(archive: Path) -> str:
    with pytest.raises(ArchiveError) as excinfo, unpacked(archive):
        pass
    return str(excinfo.value)


def test_it_unpacks_a_tar_gz_with_one_top_level_folder(tmp_path, product, private_tmp):
    archive = make_tar(tmp_path / "echo.tar.gz", product, prefix="echo-1.0.0/")
    with unpacked(archive) as root:
        assert root.name == "echo-1.0.0"
        assert (root / "otomat.toml").read_text().startswith("[product]")
        assert (root / "echo" / "bot.py").is_file()
    assert list(private_tmp.iterdir()) == []  # cleaned up on success too


def test_it_unpacks_a_zip_with_files_at_the_root(tmp_path, product):
    archive = make_zip(tmp_path / "echo.zip", product)
    with unpacked(archive) as root:
        assert (root / "otomat.toml").is_file()
        assert (root / "echo" / "__init__.py").is_file()


@pytest.mark.parametrize("mode", ["w", "w:gz", "w:bz2"])
def test_it_tells_the_format_from_the_content_not_the_name(tmp_path, product, mode):
    archive = make_tar(tmp_path / "upload.bin", product, mode=mode)
    with unpacked(archive) as root:
        assert (root / "otomat.toml").is_file()


def test_it_keeps_the_executable_bit_and_nothing_else(tmp_path):
    archive = tmp_path / "x.tar"
    with tarfile.open(archive, "w") as tar:
        add_tar_member(tar, "run.sh", b"#!/bin/sh\n", mode=0o4777)  # setuid, world-writable
        add_tar_member(tar, "data.txt", b"x", mode=0o666)
    with unpacked(archive) as root:
        assert stat.S_IMODE((root / "run.sh").stat().st_mode) == 0o755
        assert stat.S_IMODE((root / "data.txt").stat().st_mode) == 0o644


def test_it_skips_macos_junk(tmp_path, product):
    archive = make_zip(tmp_path / "echo.zip", product, prefix="echo/")
    with zipfile.ZipFile(archive, "a") as zf:
        zf.writestr("__MACOSX/echo/._otomat.toml", b"junk")
        zf.writestr("echo/.DS_Store", b"junk")
    with unpacked(archive) as root:
        assert root.name == "echo"  # __MACOSX did not count as a second top-level folder
        assert not (root / ".DS_Store").exists()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../evil.txt", "Refused '../evil.txt': '..' in a path is not allowed."),
        ("echo/../../evil.txt", "'..' in a path is not allowed"),
        ("/etc/evil.txt", "Refused '/etc/evil.txt': absolute paths are not allowed."),
        ("..\\evil.txt", "'..' in a path is not allowed"),
        ("C:\\evil.txt", "absolute paths are not allowed"),
    ],
)
def test_it_refuses_path_traversal_in_a_tar(tmp_path, private_tmp, name, expected):
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        add_tar_member(tar, "otomat.toml", b"[product]\n")
        add_tar_member(tar, name, b"owned")
    assert expected in refused(archive)
    assert not (tmp_path / "evil.txt").exists()
    assert list(private_tmp.iterdir()) == []


@pytest.mark.parametrize("name", ["../evil.txt", "/etc/evil.txt", "a/../../evil.txt"])
def test_it_refuses_path_traversal_in_a_zip(tmp_path, name):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("otomat.toml", b"[product]\n")
        zf.writestr(zipfile.ZipInfo(name), b"owned")
    assert "not allowed" in refused(archive)
    assert not (tmp_path / "evil.txt").exists()


def test_it_refuses_a_symlink_in_a_tar(tmp_path):
    archive = tmp_path / "link.tar"
    with tarfile.open(archive, "w") as tar:
        add_tar_member(tar, "passwd", type=tarfile.SYMTYPE, linkname="/etc/passwd")
    assert refused(archive) == "Refused 'passwd': links are not allowed in an archive."


def test_it_refuses_a_hardlink_in_a_tar(tmp_path):
    archive = tmp_path / "link.tar"
    with tarfile.open(archive, "w") as tar:
        add_tar_member(tar, "a.txt", b"a")
        add_tar_member(tar, "b.txt", type=tarfile.LNKTYPE, linkname="/etc/shadow")
    assert refused(archive) == "Refused 'b.txt': links are not allowed in an archive."


def test_it_refuses_a_symlink_in_a_zip(tmp_path):
    archive = tmp_path / "link.zip"
    info = zipfile.ZipInfo("passwd")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(info, "/etc/passwd")
    assert refused(archive) == "Refused 'passwd': links are not allowed in an archive."


@pytest.mark.parametrize("kind", [tarfile.FIFOTYPE, tarfile.CHRTYPE, tarfile.BLKTYPE])
def test_it_refuses_devices_and_pipes(tmp_path, kind):
    archive = tmp_path / "dev.tar"
    with tarfile.open(archive, "w") as tar:
        add_tar_member(tar, "dev", type=kind)
    assert "only files and folders are allowed" in refused(archive)


def test_it_refuses_a_device_in_a_zip(tmp_path):
    archive = tmp_path / "dev.zip"
    info = zipfile.ZipInfo("fifo")
    info.external_attr = (stat.S_IFIFO | 0o644) << 16
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(info, "")
    assert "only files and folders are allowed" in refused(archive)


def test_it_refuses_too_many_files(tmp_path, settings, private_tmp):
    settings.PRODUCT_MAX_FILES = 3
    for archive in (tmp_path / "many.tar.gz", tmp_path / "many.zip"):
        if archive.suffix == ".zip":
            with zipfile.ZipFile(archive, "w") as zf:
                for i in range(4):
                    zf.writestr(f"f{i}.txt", b"x")
        else:
            with tarfile.open(archive, "w:gz") as tar:
                for i in range(4):
                    add_tar_member(tar, f"f{i}.txt", b"x")
        assert refused(archive) == "The archive has more than 3 files; that is the limit."
    assert list(private_tmp.iterdir()) == []


def test_it_refuses_a_zip_bomb_while_extracting(tmp_path, settings, private_tmp):
    settings.PRODUCT_UNPACKED_MAX_BYTES = 1024 * 1024
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("otomat.toml", b"[product]\n")
        zf.writestr("zeros.bin", b"\0" * (8 * 1024 * 1024))
    assert archive.stat().st_size < 64 * 1024  # tiny on disk, 8 MB unpacked
    assert refused(archive) == "The archive unpacks to more than 1.0 MB; that is the limit."
    assert list(private_tmp.iterdir()) == []


def test_it_counts_bytes_not_headers_in_a_zip_that_lies(tmp_path, settings):
    """A zip whose headers claim a small size must not unpack more than the limit."""
    settings.PRODUCT_UNPACKED_MAX_BYTES = 1024 * 1024
    archive = tmp_path / "liar.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(3):
            zf.writestr(f"part{i}.bin", b"\0" * (512 * 1024))
    # Rewrite every declared uncompressed size to 1 byte (local headers and central directory).
    data = bytearray(archive.read_bytes())
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        start = 0
        while (start := data.find(signature, start)) != -1:
            data[start + offset : start + offset + 4] = (1).to_bytes(4, "little")
            start += 4
    archive.write_bytes(bytes(data))
    message = refused(archive)
    assert "damaged" in message or "unpacks to more than" in message


def test_it_refuses_a_tar_bomb(tmp_path, settings):
    settings.PRODUCT_UNPACKED_MAX_BYTES = 1024 * 1024
    archive = tmp_path / "bomb.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for i in range(3):
            add_tar_member(tar, f"zeros{i}.bin", b"\0" * (512 * 1024))
    assert refused(archive) == "The archive unpacks to more than 1.0 MB; that is the limit."


def test_it_refuses_an_archive_that_is_too_big(tmp_path, settings):
    settings.PRODUCT_ARCHIVE_MAX_BYTES = 10 * 1024
    archive = tmp_path / "big.tar"
    with tarfile.open(archive, "w") as tar:
        add_tar_member(tar, "random.bin", os.urandom(20 * 1024))
    assert refused(archive) == "The archive is 30 KB; the limit is 10 KB."


def test_it_refuses_something_that_is_not_an_archive(tmp_path):
    bogus = tmp_path / "product.zip"
    bogus.write_text("hello")
    assert refused(bogus) == "This is not a .tar.gz, .tgz, .tar or .zip archive."


def test_it_refuses_a_damaged_archive(tmp_path, product):
    archive = make_tar(tmp_path / "echo.tar.gz", product)
    archive.write_bytes(archive.read_bytes()[:200])
    assert refused(archive).startswith("The archive is damaged and cannot be read")


def test_it_refuses_an_empty_archive(tmp_path):
    archive = tmp_path / "empty.zip"
    with zipfile.ZipFile(archive, "w"):
        pass
    assert refused(archive) == "The archive is empty."


def test_it_refuses_a_member_that_appears_twice(tmp_path):
    archive = tmp_path / "twice.tar"
    with tarfile.open(archive, "w") as tar:
        add_tar_member(tar, "otomat.toml", b"good")
        add_tar_member(tar, "./otomat.toml", b"evil")
    assert "appears twice" in refused(archive)
