"""Catalog business actions: importing product versions.

A version's files live in ``settings.PRODUCTS_DIR/<slug>/<version>/``, read-only, and its row
(:class:`~otomat.catalog.models.ProductVersion`) records the checksum of those files. An import
either stores both or neither: files are staged next to their final place, moved in with one
``rename`` inside the database transaction, and removed again if the transaction does not
commit.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import IntegrityError, transaction

from otomat.accounts.services import record_audit
from otomat.catalog.archive import Limits, unpacked
from otomat.catalog.errors import CatalogError, ProductImportError
from otomat.catalog.manifest import MANIFEST_NAME, Manifest, parse_manifest
from otomat.catalog.models import Product, ProductVersion

if TYPE_CHECKING:
    from otomat.accounts.models import User

logger = logging.getLogger(__name__)

# Build and editor leftovers: not part of a product, and they would make checksums unstable
# (running a product's tests writes __pycache__ into its folder).
IGNORED_NAMES = frozenset(
    {
        "__pycache__",
        ".git",
        ".hg",
        ".svn",
        ".DS_Store",
        ".pytest_cache",
        ".mypy_cache",
        ".ruff_cache",
        ".venv",
    }
)
IGNORED_SUFFIXES = (".pyc", ".pyo")
STAGING = ".staging"  # under PRODUCTS_DIR, so the final rename stays on one filesystem


def import_product(
    source: Path, *, actor: User | None = None, source_name: str = ""
) -> ProductVersion:
    """Import the product version in ``source`` (a folder, or a .tar.gz/.tgz/.tar/.zip archive).

    Returns the new :class:`ProductVersion`. The product row is created, or updated with the
    name and description of this import. Raises a :class:`CatalogError` subclass
    (``ManifestError``, ``ArchiveError``, ``ProductImportError``) with a message for the person
    importing; on any failure nothing is stored — no files, no rows. Records the audit event
    ``product.imported`` (``source_name``, e.g. an upload's original file name, is recorded in
    it instead of ``source``'s name). Runs its own durable transaction: do not call inside
    another one.
    """
    source = Path(source)
    if not source.exists():
        raise ProductImportError(f"{source} does not exist.")
    with ExitStack() as stack:
        if source.is_dir():
            root = source
            files = _folder_files(root, Limits.from_settings())
            origin = {"source": "folder", "name": source_name or source.name}
        else:
            root = stack.enter_context(unpacked(source))
            files = _folder_files(root, Limits.from_settings())
            origin = {"source": "archive", "name": source_name or source.name}
        manifest = parse_manifest(root)
        _refuse_duplicate(manifest)
        staged = _stage(root, files)
        try:
            return _store(manifest, staged, actor=actor, origin=origin)
        finally:
            if staged.exists():
                _remove_tree(staged)


def import_builtin_products(
    *, actor: User | None = None, products_dir: Path | None = None, strict: bool = False
) -> list[ProductVersion]:
    """Import every product folder in the repository's ``products/`` not imported yet.

    Idempotent: a folder whose (slug, version) is already stored is skipped. Returns the
    versions imported by this call. A broken product is logged and skipped so the others still
    import (the main command must start); with ``strict=True`` its error is raised instead.
    Each version is imported in its own durable transaction: do not call inside another one.
    """
    products_dir = Path(products_dir or Path(settings.BASE_DIR) / "products")
    imported: list[ProductVersion] = []
    if not products_dir.is_dir():
        return imported
    for folder in sorted(products_dir.iterdir()):
        if not (folder / MANIFEST_NAME).is_file() or folder.name.startswith((".", "_")):
            continue
        try:
            manifest = parse_manifest(folder)
            if ProductVersion.objects.filter(
                product__slug=manifest.slug, version=manifest.version
            ).exists():
                continue
            imported.append(import_product(folder, actor=actor))
        except CatalogError as exc:
            if strict:
                raise
            logger.error("Built-in product %s was not imported: %s", folder.name, exc)
    return imported


def checksum_files(root: Path, files: list[str] | None = None) -> str:
    """sha256 over ``files`` (relative POSIX paths; default: every product file under ``root``).

    For each file in sorted order it hashes ``path``, NUL, the size in decimal, NUL, then the
    content — so renaming or moving a file changes the checksum, not only editing it.
    """
    if files is None:
        files = _folder_files(root, limits=None)
    digest = hashlib.sha256()
    for relative in sorted(files):
        path = root / relative
        digest.update(f"{relative}\0{path.stat().st_size}\0".encode())
        with path.open("rb") as fh:
            while chunk := fh.read(1024 * 1024):
                digest.update(chunk)
    return digest.hexdigest()


def _folder_files(root: Path, limits: Limits | None) -> list[str]:
    """Relative paths of a product's files, checked against ``limits``.

    Refuses symlinks (a folder import must not pull in files from elsewhere on the host) and
    anything that is not a regular file or folder.
    """
    found: list[str] = []
    total = 0
    for path in _walk(root):
        relative = path.relative_to(root).as_posix()
        mode = path.lstat().st_mode
        if stat.S_ISLNK(mode):
            raise ProductImportError(f"Refused {relative}: symbolic links are not allowed.")
        if stat.S_ISDIR(mode):
            continue
        if not stat.S_ISREG(mode):
            raise ProductImportError(f"Refused {relative}: only files and folders are allowed.")
        found.append(relative)
        total += path.lstat().st_size
        if limits and len(found) > limits.files:
            raise ProductImportError(
                f"The product has more than {limits.files} files; that is the limit."
            )
        if limits and total > limits.unpacked_bytes:
            raise ProductImportError(
                f"The product is bigger than {limits.unpacked_bytes // (1024 * 1024)} MB; "
                "that is the limit."
            )
    return found


def _walk(root: Path) -> Iterator[Path]:
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.name in IGNORED_NAMES or entry.name.endswith(IGNORED_SUFFIXES):
            continue
        path = Path(entry.path)
        yield path
        if entry.is_dir(follow_symlinks=False):
            yield from _walk(path)


def _refuse_duplicate(manifest: Manifest) -> None:
    if ProductVersion.objects.filter(
        product__slug=manifest.slug, version=manifest.version
    ).exists():
        raise ProductImportError(_duplicate_message(manifest))


def _duplicate_message(manifest: Manifest) -> str:
    return (
        f"{manifest.slug} {manifest.version} is already imported; bump [product].version to "
        "ship a change"
    )


def _stage(root: Path, files: list[str]) -> Path:
    """Copy ``files`` into a fresh folder under PRODUCTS_DIR/.staging; returns it."""
    staging_root = Path(settings.PRODUCTS_DIR) / STAGING
    staging_root.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(prefix="import-", dir=staging_root))
    try:
        for relative in files:
            target = staged / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(root / relative, target)
            executable = (root / relative).stat().st_mode & 0o111
            target.chmod(0o555 if executable else 0o444)
    except OSError as exc:
        _remove_tree(staged)
        raise ProductImportError(f"Cannot copy the product files: {exc}") from exc
    return staged


def _store(
    manifest: Manifest, staged: Path, *, actor: User | None, origin: dict[str, str]
) -> ProductVersion:
    files = _folder_files(staged, limits=None)
    checksum = checksum_files(staged, files)
    relative_dir = f"{manifest.slug}/{manifest.version}"
    final = Path(settings.PRODUCTS_DIR) / manifest.slug / manifest.version
    moved = False
    try:
        with transaction.atomic(durable=True):
            product, _created = Product.objects.update_or_create(
                slug=manifest.slug,
                defaults={"name": manifest.name, "description": manifest.description},
            )
            try:
                with transaction.atomic():
                    version = ProductVersion.objects.create(
                        product=product,
                        version=manifest.version,
                        runtime=manifest.runtime,
                        entry=manifest.entry,
                        command=list(manifest.command),
                        config_schema=manifest.config_schema,
                        manifest=manifest.data,
                        memory_mb=manifest.memory_mb,
                        health_check=manifest.health_check,
                        source_dir=relative_dir,
                        checksum=checksum,
                        created_by=actor if actor is not None and actor.pk else None,
                    )
            except IntegrityError as exc:
                # Another import of the same version committed between our check and now.
                raise ProductImportError(_duplicate_message(manifest)) from exc
            record_audit(
                "product.imported",
                actor=actor,
                target=version,
                data={
                    "slug": manifest.slug,
                    "version": manifest.version,
                    "checksum": checksum,
                    "files": len(files),
                    **origin,
                },
            )
            # We hold the (product, version) row, so a folder already at ``final`` can only be
            # left over from a crash between rename and commit: replace it.
            if final.exists():
                _remove_tree(final)
            final.parent.mkdir(parents=True, exist_ok=True)
            os.rename(staged, final)
            moved = True
            # After the rename: Linux needs a moved folder to be writable (it updates "..").
            _make_read_only(final)
    except BaseException:
        if moved:
            _remove_tree(final)
            _remove_if_empty(final.parent)
        raise
    return version


def _remove_tree(path: Path) -> None:
    """rmtree that first makes our read-only (0555) folders writable again."""
    for dirpath, _dirnames, _filenames in os.walk(path):
        os.chmod(dirpath, 0o700)  # owner-writable again so rmtree can unlink
    shutil.rmtree(path)


def _make_read_only(path: Path) -> None:
    """Folders 0555, bottom-up (a folder must stay writable until its children are done)."""
    for dirpath, _dirnames, _filenames in os.walk(path, topdown=False):
        os.chmod(dirpath, 0o555)  # noqa: S103 - read-only for everyone, on purpose


def _remove_if_empty(path: Path) -> None:
    with suppress(OSError):
        path.rmdir()
