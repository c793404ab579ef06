"""Back up and restore the whole platform: ``otomat backup PATH`` and ``otomat restore PATH``.

An archive is a ``.tar.gz`` holding

- ``database/``: the database, taken while the platform runs — SQLite through its online backup
  API (a consistent copy even while the runner and the worker write), PostgreSQL with
  ``pg_dump --format=custom``, MariaDB/MySQL with ``mysqldump --single-transaction``;
- ``keys/``: the secret key and the encryption keys (unless ``--without-keys``: the archive then
  holds no key, and restoring it needs the original keys in the environment);
- ``files/``: what lives beside the database in the data directory — imported product versions
  (``products/``), every instance's private data (``instances/``), stored documents and
  attachments (``media/``), the demo's credentials and the built-in emulator's store;
- ``manifest.json`` (the last member): the format, the Otomat version, the database vendor, the
  latest applied migration of every app, and the size and SHA-256 of every other member.

Restoring refuses, before it writes anything, an archive that is damaged (not a gzip'd tar, a
member missing, changed or unexpected, a path leaving the data directory), one made by a newer
Otomat (a migration this code does not have), one whose database vendor is not the configured
one, and a target that is not empty. It then migrates (an archive from an older Otomat) and
checks that the keys decrypt every stored secret.

Logs, caches, pid files and static files are not backed up: they are rebuilt or disposable.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

FORMAT = 1
MANIFEST = "manifest.json"
# Folders of the data directory that are backed up, and single files kept when present.
DATA_FOLDERS = ("products", "instances", "media")
DATA_FILES = ("demo-credentials.json",)
SQLITE_FILES = ("tgemu.sqlite3",)  # the built-in emulator's store (the demo's "Telegram")
KEY_FILES = ("secret_key", "encryption_keys")
# A bot's SQLite files are copied through SQLite; their journals are folded into the copy.
SQLITE_SUFFIXES = (".sqlite3", ".sqlite", ".db")
JOURNAL_SUFFIXES = ("-wal", "-shm", "-journal")
# Refuse archives whose manifest or member count is absurd (a crafted archive, not a backup).
MAX_MANIFEST_BYTES = 64 * 1024 * 1024
MAX_MEMBERS = 2_000_000


class BackupError(Exception):
    """A backup or restore that cannot go on; the message says why and what to do."""


@dataclass
class Result:
    path: Path
    files: int
    bytes: int
    lines: list[str]


# ---------------------------------------------------------------------------------------------
# Backup


def otomat_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("otomat")
    except PackageNotFoundError:
        return "unknown"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _database_settings() -> dict:
    from django.db import connection

    return connection.settings_dict


def _vendor() -> str:
    from django.db import connection

    return connection.vendor  # sqlite, postgresql, mysql


def _pg_env(db: dict) -> tuple[list[str], dict]:
    args = ["--dbname", db["NAME"]]
    if db.get("HOST"):
        args += ["--host", str(db["HOST"])]
    if db.get("PORT"):
        args += ["--port", str(db["PORT"])]
    if db.get("USER"):
        args += ["--username", db["USER"]]
    env = dict(os.environ)
    if db.get("PASSWORD"):
        env["PGPASSWORD"] = db["PASSWORD"]
    return args, env


def _mysql_args(db: dict) -> tuple[list[str], dict]:
    args = []
    if db.get("HOST"):
        args += ["--host", str(db["HOST"])]
    if db.get("PORT"):
        args += ["--port", str(db["PORT"])]
    if db.get("USER"):
        args += ["--user", db["USER"]]
    env = dict(os.environ)
    if db.get("PASSWORD"):
        env["MYSQL_PWD"] = db["PASSWORD"]
    return args, env


def _run_tool(command: list[str], env: dict, what: str) -> None:
    if not shutil.which(command[0]):
        raise BackupError(f"{command[0]} is needed to {what} but is not installed.")
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BackupError(f"{command[0]} failed ({done.returncode}): {done.stderr.strip()[:2000]}")


def _dump_database(staging: Path) -> tuple[str, str]:
    """Write the database into ``staging``; returns (vendor, member name)."""
    vendor = _vendor()
    db = _database_settings()
    if vendor == "sqlite":
        target = staging / "otomat.sqlite3"
        _sqlite_copy(Path(db["NAME"]), target)
        return vendor, "database/otomat.sqlite3"
    if vendor == "postgresql":
        target = staging / "otomat.pgdump"
        args, env = _pg_env(db)
        _run_tool(
            [
                "pg_dump",
                "--format=custom",
                "--no-owner",
                "--no-privileges",
                "--file",
                str(target),
                *args,
            ],
            env,
            "back up PostgreSQL",
        )
        return vendor, "database/otomat.pgdump"
    if vendor == "mysql":
        target = staging / "otomat.sql"
        args, env = _mysql_args(db)
        _run_tool(
            [
                "mysqldump",
                "--single-transaction",
                "--routines",
                "--no-tablespaces",
                *args,
                "--result-file",
                str(target),
                db["NAME"],
            ],
            env,
            "back up MariaDB",
        )
        return vendor, "database/otomat.sql"
    raise BackupError(f"Backing up a {vendor} database is not supported.")


def _sqlite_copy(source: Path, target: Path) -> None:
    """A consistent copy of a live SQLite database (its online backup API, WAL included)."""
    with (
        contextlib.closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as src,
        contextlib.closing(sqlite3.connect(target)) as dst,
    ):
        src.backup(dst)


def _applied_migrations() -> dict[str, str]:
    from django.db.migrations.recorder import MigrationRecorder

    latest: dict[str, str] = {}
    for app, name in MigrationRecorder.Migration.objects.values_list("app", "name"):
        latest[app] = max(latest.get(app, ""), name)
    return dict(sorted(latest.items()))


def _key_texts() -> dict[str, str]:
    from django.conf import settings

    return {
        "secret_key": settings.SECRET_KEY,
        "encryption_keys": ",".join(settings.ENCRYPTION_KEYS),
    }


def _data_files(data_dir: Path):
    """(member name, path) of every file of the data directory that is backed up."""
    for folder in DATA_FOLDERS:
        root = data_dir / folder
        if not root.is_dir():
            continue
        # A running shared-runtime instance's directory is lent to its sandboxed host: moved
        # under run/shared/ and replaced by a link. Such links are followed — only to a place
        # inside the data directory — so a running bot's data is in the archive too.
        inside = data_dir.resolve()
        for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
            dirnames[:] = sorted(
                d
                for d in dirnames
                if not (Path(dirpath) / d).is_symlink()
                or (Path(dirpath) / d).resolve().is_relative_to(inside)
            )
            for name in sorted(filenames):
                path = Path(dirpath) / name
                if path.is_symlink() or not path.is_file():
                    continue  # sockets, fifos and links are not data
                if (
                    name.endswith(JOURNAL_SUFFIXES)
                    and (Path(dirpath) / name.rsplit("-", 1)[0]).suffix in SQLITE_SUFFIXES
                ):
                    continue  # folded into the database's own copy
                yield "files/" + path.relative_to(data_dir).as_posix(), path
    for name in DATA_FILES:
        path = data_dir / name
        if path.is_file():
            yield f"files/{name}", path


def backup(target: Path, *, with_keys: bool = True) -> Result:
    """Write an archive of the running platform to ``target`` (a new file)."""
    from django.conf import settings

    target = Path(target)
    if target.exists():
        raise BackupError(f"{target} already exists; choose a new file name.")
    if not target.parent.is_dir():
        raise BackupError(f"{target.parent} is not a folder.")
    data_dir = Path(settings.DATA_DIR)
    members: dict[str, dict] = {}
    partial = target.with_name(target.name + ".partial")
    with tempfile.TemporaryDirectory(prefix="otomat-backup-") as tmp:
        staging = Path(tmp)

        def add(archive: tarfile.TarFile, name: str, path: Path) -> None:
            # Copy first, then hash and add the copy: a file that changes meanwhile still has
            # the checksum of exactly what the archive holds.
            copy = staging / "file"
            try:
                if path.suffix in SQLITE_SUFFIXES:
                    # A bot's SQLite store, perhaps being written (with a WAL): its online
                    # backup API gives a consistent copy, the WAL's pages folded in.
                    _sqlite_copy(path, copy)
                else:
                    shutil.copyfile(path, copy)
            except (FileNotFoundError, sqlite3.DatabaseError):
                copy.unlink(missing_ok=True)
                if path.exists() and path.suffix in SQLITE_SUFFIXES:
                    shutil.copyfile(path, copy)  # not a database after all: the bytes as they are
                else:
                    return  # removed while we walked (an instance's temporary file)
            members[name] = {"size": copy.stat().st_size, "sha256": _sha256(copy)}
            archive.add(copy, arcname=name, recursive=False, filter=_normalise)
            copy.unlink()

        with tarfile.open(partial, "w:gz", compresslevel=6) as archive:
            dumps = staging / "database"
            dumps.mkdir()
            vendor, database_member = _dump_database(dumps)
            dump = dumps / PurePosixPath(database_member).name
            members[database_member] = {"size": dump.stat().st_size, "sha256": _sha256(dump)}
            archive.add(dump, arcname=database_member, filter=_normalise)
            dump.unlink()
            if with_keys:
                for name, text in _key_texts().items():
                    _add_bytes(archive, f"keys/{name}", text.encode(), members)
            for name, path in _data_files(data_dir):
                add(archive, name, path)
            for name in SQLITE_FILES:
                path = data_dir / name
                if path.is_file():
                    copy = staging / name
                    _sqlite_copy(path, copy)
                    members[f"files/{name}"] = {
                        "size": copy.stat().st_size,
                        "sha256": _sha256(copy),
                    }
                    archive.add(copy, arcname=f"files/{name}", filter=_normalise)
                    copy.unlink()
            manifest = {
                "format": FORMAT,
                "otomat_version": otomat_version(),
                "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "database": {"vendor": vendor, "member": database_member},
                "migrations": _applied_migrations(),
                "keys": with_keys,
                "members": members,
            }
            _add_bytes(archive, MANIFEST, json.dumps(manifest, indent=1).encode(), None)
    partial.chmod(0o600)  # it holds the keys and every customer's data
    partial.rename(target)
    size = target.stat().st_size
    lines = [
        f"backed up {len(members)} files ({vendor} database) to {target} ({size:,} bytes)",
        "the archive holds the encryption keys: keep it as safe as the keys themselves"
        if with_keys
        else "the archive holds no keys: restoring it needs OTOMAT_ENCRYPTION_KEYS and "
        "OTOMAT_SECRET_KEY of this installation",
    ]
    return Result(target, len(members), size, lines)


def _normalise(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = 0o600
    return info


def _add_bytes(archive: tarfile.TarFile, name: str, data: bytes, members: dict | None) -> None:
    info = _normalise(tarfile.TarInfo(name))
    info.size = len(data)
    info.mtime = int(datetime.now(UTC).timestamp())
    archive.addfile(info, io.BytesIO(data))
    if members is not None:
        members[name] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


# ---------------------------------------------------------------------------------------------
# Restore (the first half runs before Django is set up: the target must be checked empty
# before settings create their key files in it)


def data_dir_from_environment() -> Path:
    from otomat.lib.env import env_path

    return env_path("OTOMAT_DATA_DIR", Path.cwd() / "var")


def check_target_empty(data_dir: Path) -> None:
    if data_dir.exists() and any(data_dir.iterdir()):
        raise BackupError(
            f"The data directory {data_dir} is not empty. Restore into an empty one "
            "(set OTOMAT_DATA_DIR to a new folder)."
        )


def _safe_member_name(name: str) -> bool:
    path = PurePosixPath(name)
    return not path.is_absolute() and ".." not in path.parts and name == path.as_posix()


def read_archive(archive_path: Path, staging: Path) -> dict:
    """Extract ``archive_path`` into ``staging`` and verify it against its manifest. Returns the
    manifest. Raises BackupError on any damage."""
    archive_path = Path(archive_path)
    if not archive_path.is_file():
        raise BackupError(f"{archive_path} is not a file.")
    seen: dict[str, dict] = {}
    manifest: dict | None = None
    try:
        with tarfile.open(archive_path, "r:gz") as archive:
            count = 0
            for info in archive:
                count += 1
                if count > MAX_MEMBERS:
                    raise BackupError("The archive has too many members to be a backup.")
                if not info.isfile() or not _safe_member_name(info.name):
                    raise BackupError(
                        f"The archive holds {info.name!r}, which no backup holds (not a plain "
                        "file inside the data directory); refused."
                    )
                handle = archive.extractfile(info)
                assert handle is not None
                if info.name == MANIFEST:
                    if info.size > MAX_MANIFEST_BYTES:
                        raise BackupError("The archive's manifest is too large.")
                    try:
                        manifest = json.loads(handle.read())
                    except ValueError as exc:
                        raise BackupError(f"The archive's manifest is not JSON: {exc}.") from exc
                    continue
                if info.name in seen:
                    raise BackupError(f"The archive holds {info.name!r} twice.")
                out = staging / info.name
                out.parent.mkdir(parents=True, exist_ok=True)
                digest = hashlib.sha256()
                size = 0
                with out.open("wb") as target:
                    while chunk := handle.read(1024 * 1024):
                        digest.update(chunk)
                        size += len(chunk)
                        target.write(chunk)
                seen[info.name] = {"size": size, "sha256": digest.hexdigest()}
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise BackupError(f"{archive_path} is damaged or not an Otomat backup: {exc}.") from exc
    if manifest is None:
        raise BackupError(f"{archive_path} has no manifest: it is not an Otomat backup.")
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(
            f"The archive's format is {manifest.get('format') if isinstance(manifest, dict) else '?'}"
            f"; this Otomat reads format {FORMAT}."
        )
    listed = manifest.get("members")
    if not isinstance(listed, dict):
        raise BackupError("The archive's manifest lists no members.")
    for name, expected in listed.items():
        found = seen.get(name)
        if found is None:
            raise BackupError(f"The archive is damaged: {name} is missing.")
        if found != {"size": expected.get("size"), "sha256": expected.get("sha256")}:
            raise BackupError(f"The archive is damaged: {name} does not match its checksum.")
    extra = sorted(set(seen) - set(listed))
    if extra:
        raise BackupError(f"The archive holds files its manifest does not list: {extra[:5]}.")
    return manifest


def check_compatible(manifest: dict) -> None:
    """Refuse an archive of another database vendor, or one made by a newer Otomat."""
    from django.db.migrations.loader import MigrationLoader

    vendor = _vendor()
    archived = (manifest.get("database") or {}).get("vendor")
    if archived != vendor:
        raise BackupError(
            f"The archive holds a {archived} database but this installation is configured for "
            f"{vendor} (OTOMAT_DATABASE_URL). Configure the same kind of database to restore it."
        )
    known = set(MigrationLoader(None, ignore_no_migrations=True).disk_migrations)
    for app, name in (manifest.get("migrations") or {}).items():
        if (app, name) not in known:
            raise BackupError(
                f"The archive was made by a newer Otomat ({manifest.get('otomat_version')}): "
                f"its database has migration {app}.{name}, which this version does not know. "
                "Upgrade Otomat first, then restore."
            )


def _check_database_empty() -> None:
    from django.db import connection

    tables = connection.introspection.table_names()
    if tables:
        raise BackupError(
            f"The configured database already has {len(tables)} tables. Restore into an empty "
            "database."
        )


def _load_database(manifest: dict, staging: Path) -> None:
    from django.db import connection

    member = staging / manifest["database"]["member"]
    vendor = manifest["database"]["vendor"]
    db = _database_settings()
    if vendor == "sqlite":
        connection.close()
        target = Path(db["NAME"])
        target.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{target}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(member, target)
        return
    connection.close()
    if vendor == "postgresql":
        args, env = _pg_env(db)
        _run_tool(
            ["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error", *args, str(member)],
            env,
            "restore PostgreSQL",
        )
        return
    args, env = _mysql_args(db)
    with member.open("rb") as dump:
        if not shutil.which("mysql"):
            raise BackupError("mysql is needed to restore MariaDB but is not installed.")
        done = subprocess.run(
            ["mysql", *args, db["NAME"]], stdin=dump, env=env, capture_output=True, check=False
        )
    if done.returncode != 0:
        raise BackupError(f"mysql failed: {done.stderr.decode(errors='replace')[:2000]}")


def _place_files(staging: Path, data_dir: Path) -> int:
    files = staging / "files"
    count = 0
    if not files.is_dir():
        return 0
    for path in sorted(files.rglob("*")):
        if path.is_file():
            target = data_dir / path.relative_to(files)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(path, target)
            count += 1
    return count


def place_keys(staging: Path, data_dir: Path, manifest: dict) -> list[str]:
    """Write the archive's keys where settings read them (before Django is set up). Keys set in
    the environment win: they are then what the restored platform uses."""
    lines = []
    if not manifest.get("keys"):
        if not (
            os.environ.get("OTOMAT_ENCRYPTION_KEYS")
            or os.environ.get("OTOMAT_ENCRYPTION_KEYS_FILE")
        ):
            raise BackupError(
                "The archive was made without keys (--without-keys). Set OTOMAT_ENCRYPTION_KEYS "
                "(or OTOMAT_ENCRYPTION_KEYS_FILE) and OTOMAT_SECRET_KEY to those of the "
                "installation it came from, then restore again."
            )
        return ["keys taken from the environment (the archive holds none)"]
    keys = data_dir / "keys"
    keys.mkdir(mode=0o700, parents=True, exist_ok=True)
    for name in KEY_FILES:
        source = staging / "keys" / name
        target = keys / name
        target.touch(mode=0o600)
        target.write_bytes(source.read_bytes())
        env_name = f"OTOMAT_{name.upper()}"
        if os.environ.get(env_name) or os.environ.get(f"{env_name}_FILE"):
            lines.append(f"{env_name} is set in the environment and wins over the archive's key")
    lines.append(f"keys restored to {keys}")
    return lines


def verify_secrets() -> int:
    """Decrypt every stored secret; returns how many. Raises BackupError when a key is wrong."""
    from django.apps import apps

    from otomat.instances.crypto import EncryptedJSONField

    count = 0
    for model in apps.get_models():
        fields = [f.name for f in model._meta.fields if isinstance(f, EncryptedJSONField)]
        if not fields:
            continue
        try:
            for row in model._base_manager.only("pk", *fields).iterator():
                count += len(fields)
                del row
        except ValueError as exc:
            raise BackupError(
                f"{exc} The restored {model._meta.label} rows cannot be read: the keys in use "
                "are not those of the installation the archive came from."
            ) from exc
    return count


def restore(archive_path: Path, *, migrate) -> list[str]:
    """Restore an archive into the empty data directory named by the environment. ``migrate``
    runs the migrations (the CLI passes Django's ``call_command``)."""
    data_dir = data_dir_from_environment()
    check_target_empty(data_dir)
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="otomat-restore-") as tmp:
        staging = Path(tmp)
        manifest = read_archive(archive_path, staging)
        lines.append(
            f"archive verified: {len(manifest['members'])} files from Otomat "
            f"{manifest.get('otomat_version')} of {manifest.get('created_at')}"
        )
        data_dir.mkdir(parents=True, exist_ok=True)
        try:
            lines += place_keys(staging, data_dir, manifest)
            os.environ.setdefault("DJANGO_SETTINGS_MODULE", "otomat.settings")
            import django

            django.setup()
            check_compatible(manifest)
            _check_database_empty()
        except BackupError:
            shutil.rmtree(data_dir / "keys", ignore_errors=True)
            raise
        _load_database(manifest, staging)
        lines.append(f"{manifest['database']['vendor']} database restored")
        lines.append(f"{_place_files(staging, data_dir)} data files restored to {data_dir}")
    migrate()
    lines.append(f"{verify_secrets()} stored secrets decrypt with the keys in use")
    return lines
