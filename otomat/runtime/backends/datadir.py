"""Handing an instance's data directory to a warm spare that was started on an empty one.

A spare is sandboxed before anybody knows which instance it will serve, so its ``/data`` is a
bind mount of a fresh directory S. A bind mount follows the directory's inode, not its name:
moving the instance's files into S and then renaming S to the instance's path D gives the spare
exactly the instance's data, with no remount. Both renames need S and D on one filesystem.

Crash safety: S gets a marker file naming D before anything moves. If the runner dies half-way,
:func:`recover` (called from the backend's ``open()``) finishes or undoes the move, so the
instance's files are never left stranded in a spare directory that would then be deleted.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import stat
from pathlib import Path

log = logging.getLogger("otomat.runtime.process")

MARKER = ".otomat-adopt"


def _existing_ancestor(path: Path) -> Path:
    path = path.absolute()
    while not path.exists():
        path = path.parent
    return path


def same_filesystem(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` (or their nearest existing ancestors) share a device."""
    return _existing_ancestor(a).stat().st_dev == _existing_ancestor(b).stat().st_dev


def adopt(spare_dir: Path, data_dir: Path) -> None:
    """Move ``data_dir``'s entries into ``spare_dir`` and rename ``spare_dir`` to ``data_dir``.

    On return ``data_dir`` is the spare's directory holding the instance's previous data. Raises
    ``OSError`` after putting every moved entry back when a step fails.
    """
    marker = spare_dir / MARKER
    marker.write_text(str(data_dir.absolute()))
    moved: list[str] = []
    try:
        if data_dir.exists():
            os.chmod(spare_dir, stat.S_IMODE(data_dir.stat().st_mode))
            for entry in os.scandir(data_dir):
                if entry.name == MARKER:  # left by an earlier crash after the final rename
                    os.unlink(entry.path)
                    continue
                os.rename(entry.path, spare_dir / entry.name)
                moved.append(entry.name)
            os.rmdir(data_dir)
        else:
            data_dir.parent.mkdir(parents=True, exist_ok=True)
        os.rename(spare_dir, data_dir)
    except OSError:
        data_dir.mkdir(parents=True, exist_ok=True)
        for name in moved:
            with contextlib.suppress(OSError):
                os.rename(spare_dir / name, data_dir / name)
        raise
    with contextlib.suppress(FileNotFoundError):
        (data_dir / MARKER).unlink()


def recover(spares_root: Path) -> None:
    """Clean ``spares_root`` after a runner restart: finish or undo interrupted adoptions, then
    delete every unused spare directory (their processes were killed already)."""
    if not spares_root.is_dir():
        return
    for spare in spares_root.iterdir():
        if not spare.is_dir():
            continue
        marker = spare / MARKER
        if marker.exists():
            target = Path(marker.read_text().strip())
            log.warning("recovering interrupted data hand-over %s -> %s", spare, target)
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                os.rename(spare, target)
                marker = target / MARKER
                marker.unlink()
                continue
            for entry in os.scandir(spare):
                if entry.name != MARKER and not (target / entry.name).exists():
                    os.rename(entry.path, target / entry.name)
        shutil.rmtree(spare, ignore_errors=True)
