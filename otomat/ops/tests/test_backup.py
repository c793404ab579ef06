"""What `otomat restore` refuses before it writes anything: a damaged archive (truncated, a
member changed, missing or added, a path leaving the data directory, a link, no manifest, another
format), one from a newer Otomat or another database vendor, a target that is not empty. And what
`otomat backup` writes: every member listed with its size and SHA-256, the keys only when asked."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from otomat.ops import backup as bk


def _archive(path: Path, files: dict[str, bytes], *, manifest: dict | None = None, extra=()):
    members = {
        name: {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        for name, data in files.items()
    }
    manifest = manifest or {
        "format": bk.FORMAT,
        "otomat_version": "0.1.0",
        "database": {"vendor": "sqlite", "member": "database/otomat.sqlite3"},
        "migrations": {"accounts": "0001_initial"},
        "keys": True,
        "members": members,
    }
    with tarfile.open(path, "w:gz") as archive:
        for name, data in [*files.items(), *extra]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        data = json.dumps(manifest).encode()
        info = tarfile.TarInfo(bk.MANIFEST)
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return path


def _manifest_of(path: Path) -> dict:
    with tarfile.open(path) as archive:
        return json.loads(archive.extractfile(bk.MANIFEST).read())


GOOD = {
    "database/otomat.sqlite3": b"db",
    "keys/secret_key": b"s",
    "keys/encryption_keys": b"k",
    "files/products/greeter/1.0.0/otomat.toml": b"[product]",
}


def test_a_whole_archive_is_read_back_and_verified(tmp_path):
    manifest = bk.read_archive(_archive(tmp_path / "a.tar.gz", GOOD), tmp_path / "out")
    assert set(manifest["members"]) == set(GOOD)
    assert (tmp_path / "out/files/products/greeter/1.0.0/otomat.toml").read_bytes() == b"[product]"


def test_a_changed_member_is_refused(tmp_path):
    good = _archive(tmp_path / "a.tar.gz", GOOD)
    manifest = _manifest_of(good)
    tampered = _archive(
        tmp_path / "b.tar.gz", {**GOOD, "database/otomat.sqlite3": b"DB"}, manifest=manifest
    )
    with pytest.raises(bk.BackupError, match="does not match its checksum"):
        bk.read_archive(tampered, tmp_path / "out")


def test_a_missing_or_unlisted_member_is_refused(tmp_path):
    manifest = _manifest_of(_archive(tmp_path / "a.tar.gz", GOOD))
    fewer = {k: v for k, v in GOOD.items() if not k.startswith("keys/secret")}
    with pytest.raises(bk.BackupError, match="keys/secret_key is missing"):
        bk.read_archive(_archive(tmp_path / "b.tar.gz", fewer, manifest=manifest), tmp_path / "o1")
    more = _archive(tmp_path / "c.tar.gz", GOOD, manifest=manifest, extra=[("files/x", b"x")])
    with pytest.raises(bk.BackupError, match="does not list"):
        bk.read_archive(more, tmp_path / "o2")


@pytest.mark.parametrize("name", ["../evil", "/etc/passwd", "files/../../evil"])
def test_a_path_leaving_the_data_directory_is_refused(tmp_path, name):
    hostile = _archive(tmp_path / "a.tar.gz", GOOD, extra=[(name, b"x")])
    with pytest.raises(bk.BackupError, match="no backup holds"):
        bk.read_archive(hostile, tmp_path / "out")
    assert not (tmp_path / "evil").exists()


def test_a_link_is_refused(tmp_path):
    path = tmp_path / "a.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        info = tarfile.TarInfo("files/link")
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        archive.addfile(info)
    with pytest.raises(bk.BackupError, match="no backup holds"):
        bk.read_archive(path, tmp_path / "out")


def test_a_truncated_or_foreign_file_is_refused(tmp_path):
    good = _archive(tmp_path / "a.tar.gz", GOOD).read_bytes()
    (tmp_path / "cut.tar.gz").write_bytes(good[: len(good) // 2])
    with pytest.raises(bk.BackupError, match="damaged or not an Otomat backup"):
        bk.read_archive(tmp_path / "cut.tar.gz", tmp_path / "o1")
    (tmp_path / "text.tar.gz").write_text("hello")
    with pytest.raises(bk.BackupError, match="damaged or not an Otomat backup"):
        bk.read_archive(tmp_path / "text.tar.gz", tmp_path / "o2")
    with pytest.raises(bk.BackupError, match="is not a file"):
        bk.read_archive(tmp_path / "absent.tar.gz", tmp_path / "o3")


def test_no_manifest_or_another_format_is_refused(tmp_path):
    path = tmp_path / "a.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        info = tarfile.TarInfo("files/x")
        info.size = 1
        archive.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(bk.BackupError, match="has no manifest"):
        bk.read_archive(path, tmp_path / "o1")
    other = _archive(tmp_path / "b.tar.gz", GOOD, manifest={"format": 99, "members": {}})
    with pytest.raises(bk.BackupError, match="this Otomat reads format 1"):
        bk.read_archive(other, tmp_path / "o2")


def test_an_archive_of_a_newer_otomat_or_another_database_is_refused(db):
    from django.db import connection

    manifest = {
        "otomat_version": "9.0.0",
        "database": {"vendor": connection.vendor},
        "migrations": {"accounts": "0001_initial", "billing": "9999_from_the_future"},
    }
    with pytest.raises(bk.BackupError, match=r"newer Otomat \(9.0.0\).*billing.9999"):
        bk.check_compatible(manifest)
    other = "postgresql" if connection.vendor != "postgresql" else "sqlite"
    with pytest.raises(bk.BackupError, match=f"holds a {other} database"):
        bk.check_compatible({**manifest, "database": {"vendor": other}, "migrations": {}})
    bk.check_compatible({**manifest, "migrations": {"accounts": "0001_initial"}})  # fine


def test_a_target_that_is_not_empty_is_refused(tmp_path):
    bk.check_target_empty(tmp_path / "absent")  # fine: created by the restore
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "otomat.sqlite3").write_bytes(b"")
    with pytest.raises(bk.BackupError, match="is not empty"):
        bk.check_target_empty(tmp_path / "used")


def test_an_archive_lists_every_member_and_keys_only_when_asked(db, tmp_path, settings):
    settings.DATA_DIR = tmp_path / "data"
    (tmp_path / "data" / "instances" / "x").mkdir(parents=True)
    (tmp_path / "data" / "instances" / "x" / "state.json").write_text("{}")
    result = bk.backup(tmp_path / "with.tar.gz")
    manifest = bk.read_archive(result.path, tmp_path / "o1")
    assert {"keys/secret_key", "keys/encryption_keys", "files/instances/x/state.json"} <= set(
        manifest["members"]
    )
    assert manifest["keys"] is True and manifest["migrations"]["accounts"]
    without = bk.read_archive(
        bk.backup(tmp_path / "without.tar.gz", with_keys=False).path, tmp_path / "o2"
    )
    assert not [m for m in without["members"] if m.startswith("keys/")]
    assert without["keys"] is False
    with pytest.raises(bk.BackupError, match="already exists"):
        bk.backup(tmp_path / "with.tar.gz")


def test_a_bots_sqlite_store_is_copied_consistently_with_its_wal(db, tmp_path, settings):
    import sqlite3

    settings.DATA_DIR = tmp_path / "data"
    store = tmp_path / "data" / "instances" / "x" / "index.sqlite3"
    store.parent.mkdir(parents=True)
    writer = sqlite3.connect(store)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")  # the rows stay in the WAL, not the file
    writer.execute("CREATE TABLE films (title TEXT)")
    writer.execute("INSERT INTO films VALUES ('The Matrix')")
    writer.commit()
    assert (store.parent / "index.sqlite3-wal").exists()
    result = bk.backup(tmp_path / "a.tar.gz")
    writer.close()
    manifest = bk.read_archive(result.path, tmp_path / "out")
    names = set(manifest["members"])
    assert "files/instances/x/index.sqlite3" in names
    assert not [n for n in names if n.endswith(("-wal", "-shm"))]
    copy = sqlite3.connect(tmp_path / "out" / "files/instances/x/index.sqlite3")
    assert copy.execute("SELECT title FROM films").fetchall() == [("The Matrix",)]


def test_a_running_shared_bots_lent_directory_is_followed_but_no_link_outside(
    db, tmp_path, settings
):
    settings.DATA_DIR = tmp_path / "data"
    lent = tmp_path / "data" / "run" / "shared" / "hosts" / "h" / "data" / "x"
    lent.mkdir(parents=True)
    (lent / "state.json").write_text("{}")
    (tmp_path / "data" / "instances").mkdir()
    (tmp_path / "data" / "instances" / "x").symlink_to(lent)  # as the shared backend lends it
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "secret.txt").write_text("not ours")
    (tmp_path / "data" / "instances" / "y").symlink_to(outside)
    manifest = bk.read_archive(bk.backup(tmp_path / "a.tar.gz").path, tmp_path / "out")
    names = set(manifest["members"])
    assert "files/instances/x/state.json" in names
    assert not [n for n in names if "secret.txt" in n or n.startswith("files/run/")]
