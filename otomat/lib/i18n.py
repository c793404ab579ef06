"""Compile the .po translation catalogs to .mo with Babel, so a fresh machine needs no gettext."""

from __future__ import annotations

from pathlib import Path

LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"


def compile_catalogs(locale_dir: Path = LOCALE_DIR) -> list[str]:
    """Compile every ``*.po`` under ``locale_dir`` whose ``.mo`` is missing or older. Returns a
    line per compiled file. Raises ValueError on a catalog with syntax errors."""
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
