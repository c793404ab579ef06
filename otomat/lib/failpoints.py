"""Named crash points for crash-safety tests: ``failpoint("billing.before_unsuspend")`` ends the
process at once (like a kill -9: no cleanup, no commit) when ``OTOMAT_FAILPOINTS`` lists that
name (comma separated). Unset in production, where each call is one dictionary lookup."""

from __future__ import annotations

import os

EXIT_CODE = 86


def failpoint(name: str) -> None:
    armed = os.environ.get("OTOMAT_FAILPOINTS")
    if armed and name in armed.split(","):
        os._exit(EXIT_CODE)
