"""A customer's export of an instance's data: settings (never secrets), the files in its data
directory and the rows of its data store, as one zip. Offered before billing terminates an
instance and available until its data is deleted."""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from pathlib import Path

from otomat.instances.models import Instance

MAX_FILE_BYTES = 512 * 1024 * 1024  # a single file bigger than this is listed, not copied


class ExportUnavailable(Exception):
    """The data is gone (deleted after the grace period)."""


def build_export(instance: Instance) -> Path:
    """Write the export to a temporary file and return its path (the caller deletes it).
    Raises ExportUnavailable once the data has been deleted."""
    if instance.data_deleted_at is not None:
        raise ExportUnavailable("This instance's data has been deleted.")
    from otomat.botdata.models import Job, KeyValue

    fd, name = tempfile.mkstemp(prefix="otomat-export-", suffix=".zip")
    os.close(fd)
    path = Path(name)
    skipped: list[str] = []
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        about = {
            "name": instance.name,
            "product": instance.version.product.slug,
            "version": instance.version.version,
            "state": instance.state,
            "created_at": instance.created_at.isoformat(),
            "config": instance.config,  # public fields only; secrets are never exported
        }
        archive.writestr("instance.json", json.dumps(about, indent=2, ensure_ascii=False))
        store = {
            row.key: _decoded(row.value)
            for row in KeyValue.objects.filter(instance_id=str(instance.pk)).order_by("key")
        }
        if store:
            archive.writestr("store.json", json.dumps(store, indent=2, ensure_ascii=False))
        jobs = [
            {
                "key": j.key,
                "kind": j.kind,
                "payload": _decoded(j.payload),
                "due_at": j.due_at.isoformat(),
            }
            for j in Job.objects.filter(instance_id=str(instance.pk)).order_by("due_at")
        ]
        if jobs:
            archive.writestr("jobs.json", json.dumps(jobs, indent=2, ensure_ascii=False))
        root = instance.data_dir
        if root.is_dir():
            for dirpath, _dirnames, filenames in os.walk(root, followlinks=False):
                for filename in sorted(filenames):
                    file = Path(dirpath) / filename
                    relative = file.relative_to(root).as_posix()
                    if file.is_symlink() or not file.is_file():
                        continue  # never follow a link out of the data directory
                    if file.stat().st_size > MAX_FILE_BYTES:
                        skipped.append(relative)
                        continue
                    archive.write(file, f"data/{relative}")
        if skipped:
            archive.writestr("SKIPPED.txt", "Too large to export:\n" + "\n".join(skipped))
    return path


def _decoded(value: str):
    try:
        return json.loads(value)
    except ValueError:
        return value
