"""Compile the .po translation catalogs to .mo with Babel, so a fresh machine needs no gettext."""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent.parent
LOCALE_DIR = PACKAGE_DIR / "locale"


def compile_catalogs(locale_dir: Path | None = None) -> list[str]:
    """Compile every ``*.po`` whose ``.mo`` is missing or older: under ``locale_dir``, or by
    default the package's catalog and every app's own ``locale/`` (apps such as projects keep
    their texts beside them). Returns a line per compiled file. Raises ValueError on a catalog
    with syntax errors."""
    if locale_dir is None:
        done: list[str] = []
        for directory in sorted({LOCALE_DIR, *PACKAGE_DIR.glob("**/locale")}):
            if directory.is_dir() and ".venv" not in directory.parts:
                done += compile_catalogs(directory)
        return done
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    done: list[str] = []
    for po_path in sorted(locale_dir.glob("*/LC_MESSAGES/*.po")):
        mo_path = po_path.with_suffix(".mo")
        if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        with po_path.open("rb") as handle:
            catalog = read_po(handle, abort_invalid=True)
        with mo_path.open("wb") as handle:
            write_mo(handle, catalog, use_fuzzy=False)
        done.append(f"compiled {po_path.relative_to(locale_dir)}")
    return done
