"""Safe extraction of uploaded product archives (.tar.gz, .tgz, .tar, .zip).

An archive comes from a person with an upload form, so nothing in it is trusted: member names
(absolute paths, ``..``), member kinds (links, devices, FIFOs), counts and sizes are checked
before anything is written, and the unpacked size is counted from the bytes actually
decompressed — header sizes can lie, and a few kilobytes can inflate to gigabytes. Only regular
files and directories are created, with modes we choose (0644, 0755 when executable).

Limits come from settings: ``PRODUCT_ARCHIVE_MAX_BYTES``, ``PRODUCT_UNPACKED_MAX_BYTES`` and
``PRODUCT_MAX_FILES``.
"""

from __future__ import annotations

import shutil
import stat
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from django.conf import settings

from otomat.catalog.errors import ArchiveError

CHUNK = 64 * 1024
# Junk that archivers add; skipped rather than refused so a zip made on a Mac just works.
SKIPPED_PREFIXES = ("__MACOSX/",)
SKIPPED_NAMES = (".DS_Store",)
SUPPORTED = ".tar.gz, .tgz, .tar or .zip"


@dataclass(frozen=True)
class Limits:
    """Extraction limits; :meth:`from_settings` reads them at call time (tests override)."""

    archive_bytes: int
    unpacked_bytes: int
    files: int

    @classmethod
    def from_settings(cls) -> Limits:
        return cls(
            archive_bytes=settings.PRODUCT_ARCHIVE_MAX_BYTES,
            unpacked_bytes=settings.PRODUCT_UNPACKED_MAX_BYTES,
            files=settings.PRODUCT_MAX_FILES,
        )


@contextmanager
def unpacked(archive: Path, *, limits: Limits | None = None) -> Iterator[Path]:
    """Extract ``archive`` into a fresh temporary directory and yield the product root.

    The root is the archive's single top-level folder when everything is inside one, else the
    extraction directory itself. The temporary directory is always removed on exit, on success
    and failure alike. Raises :class:`ArchiveError` with a message for the uploader.
    """
    workdir = Path(tempfile.mkdtemp(prefix="otomat-archive-"))
    try:
        yield extract_archive(archive, workdir, limits=limits)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def extract_archive(archive: Path, dest: Path, *, limits: Limits | None = None) -> Path:
    """Extract ``archive`` into the empty directory ``dest``; returns the product root.

    Raises :class:`ArchiveError`; on failure ``dest`` is left empty (the caller owns ``dest``).
    """
    limits = limits or Limits.from_settings()
    archive = Path(archive)
    try:
        size = archive.stat().st_size
    except OSError as exc:
        raise ArchiveError(f"Cannot read the archive: {exc.strerror}") from exc
    if size > limits.archive_bytes:
        raise ArchiveError(f"The archive is {_mb(size)}; the limit is {_mb(limits.archive_bytes)}.")
    kind = _sniff(archive)
    writer = _Writer(dest, limits)
    try:
        if kind == "zip":
            _extract_zip(archive, writer)
        else:
            _extract_tar(archive, writer)
    except ArchiveError:
        _empty(dest)
        raise
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        # Corrupt data (bad CRC, truncated stream, wrong password...) — the archive's fault.
        _empty(dest)
        raise ArchiveError(f"The archive is damaged and cannot be read: {exc}") from exc
    if writer.files == 0:
        _empty(dest)  # folders only
        raise ArchiveError("The archive is empty.")
    return _product_root(dest)


def _sniff(archive: Path) -> str:
    """Tell the format from the content, not the name: an upload's name is whatever it says."""
    with archive.open("rb") as fh:
        head = fh.read(4)
    if head[:2] == b"PK" and zipfile.is_zipfile(archive):
        return "zip"
    if head[:2] == b"\x1f\x8b":
        return "tar"  # gzip; tarfile checks that a tar is inside
    if tarfile.is_tarfile(archive):
        return "tar"
    raise ArchiveError(f"This is not a {SUPPORTED} archive.")


class _Writer:
    """Checks member names and creates files under ``dest``, counting files and bytes."""

    def __init__(self, dest: Path, limits: Limits) -> None:
        self.dest = dest
        self.limits = limits
        self.files = 0
        self.members = 0
        self.bytes = 0
        self.seen: set[str] = set()

    def count_member(self) -> None:
        self.members += 1
        if self.members > self.limits.files:
            raise ArchiveError(
                f"The archive has more than {self.limits.files} files; that is the limit."
            )

    def target(self, raw_name: str) -> Path | None:
        """The path for a member, or None to skip it; raises ArchiveError for unsafe names."""
        name = raw_name.replace("\\", "/")  # archivers on Windows write backslashes
        if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
            raise ArchiveError(f"Refused {raw_name!r}: absolute paths are not allowed.")
        parts = [part for part in PurePosixPath(name).parts if part not in ("", ".")]
        if ".." in parts:
            raise ArchiveError(f"Refused {raw_name!r}: '..' in a path is not allowed.")
        if any("\x00" in part for part in parts):
            raise ArchiveError(f"Refused {raw_name!r}: invalid file name.")
        if not parts:
            return None
        relative = "/".join(parts)
        if relative.startswith(SKIPPED_PREFIXES) or parts[-1] in SKIPPED_NAMES:
            return None
        if parts[-1].startswith("._") and "__MACOSX" in name:
            return None
        if relative in self.seen:
            raise ArchiveError(f"Refused {raw_name!r}: it appears twice in the archive.")
        self.seen.add(relative)
        return self.dest.joinpath(*parts)

    def directory(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)

    def file(self, path: Path, source: IO[bytes], *, executable: bool) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            raise ArchiveError(f"Refused {path.relative_to(self.dest)}: it appears twice.")
        self.files += 1
        # Count the bytes we actually get out of the decompressor, never the declared size.
        with path.open("xb") as out:
            while chunk := source.read(CHUNK):
                self.bytes += len(chunk)
                if self.bytes > self.limits.unpacked_bytes:
                    raise ArchiveError(
                        f"The archive unpacks to more than {_mb(self.limits.unpacked_bytes)}; "
                        "that is the limit."
                    )
                out.write(chunk)
        path.chmod(0o755 if executable else 0o644)


def _extract_tar(archive: Path, writer: _Writer) -> None:
    # Stream member by member ("r:*" handles gzip/bz2/xz); never list all members first, which
    # would decompress the whole archive before the first check.
    with tarfile.open(archive, mode="r:*") as tar:
        while (member := tar.next()) is not None:
            writer.count_member()
            if member.issym() or member.islnk():
                raise ArchiveError(f"Refused {member.name!r}: links are not allowed in an archive.")
            if not (member.isfile() or member.isdir()):
                raise ArchiveError(
                    f"Refused {member.name!r}: only files and folders are allowed "
                    "(no devices or pipes)."
                )
            target = writer.target(member.name)
            if target is None:
                continue
            if member.isdir():
                writer.directory(target)
                continue
            if member.size > writer.limits.unpacked_bytes:
                raise ArchiveError(
                    f"The archive unpacks to more than {_mb(writer.limits.unpacked_bytes)}; "
                    "that is the limit."
                )
            source = tar.extractfile(member)
            assert source is not None  # a regular file always has data
            with source:
                writer.file(target, source, executable=bool(member.mode & 0o111))


def _extract_zip(archive: Path, writer: _Writer) -> None:
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        if len(infos) > writer.limits.files:
            raise ArchiveError(
                f"The archive has more than {writer.limits.files} files; that is the limit."
            )
        for info in infos:
            writer.count_member()
            mode = info.external_attr >> 16  # Unix mode, when the zip was made on Unix
            kind = stat.S_IFMT(mode)
            if stat.S_ISLNK(mode):
                raise ArchiveError(
                    f"Refused {info.filename!r}: links are not allowed in an archive."
                )
            if kind and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                raise ArchiveError(
                    f"Refused {info.filename!r}: only files and folders are allowed "
                    "(no devices or pipes)."
                )
            if info.flag_bits & 0x1:
                raise ArchiveError(f"Refused {info.filename!r}: encrypted files are not supported.")
            target = writer.target(info.filename)
            if target is None:
                continue
            if info.is_dir():
                writer.directory(target)
                continue
            with zf.open(info) as source:
                writer.file(target, source, executable=bool(mode & 0o111))


def _product_root(dest: Path) -> Path:
    """``dest`` itself, or its only child folder when the archive wrapped everything in one."""
    if (dest / "otomat.toml").exists():
        return dest
    children = list(dest.iterdir())
    if len(children) == 1 and children[0].is_dir():
        return children[0]
    return dest


def _empty(dest: Path) -> None:
    for child in dest.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def _mb(size: int) -> str:
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KB" if size >= 1024 else f"{size} bytes"
    return f"{size / (1024 * 1024):.1f} MB"
