"""``python -m otomat.tgemu`` runs the emulator; see ``--help``."""

from .cli import main

raise SystemExit(main())
