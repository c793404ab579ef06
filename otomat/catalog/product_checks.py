"""Live checks written by a product (``"x-otomat-check": "product:pkg.module:function"``).

Product code is not platform code: it runs in a short-lived sandboxed process (the same sandbox as
the product's instances, with a scratch data directory), with a timeout, never inside the web
server. See docs/products.md.

The sandbox is the runtime's (``otomat.runtime.backends.sandbox``); the catalog sits below the
runtime and does not import it: the runtime hands it over when Django starts
(:func:`use_sandbox`, called from ``otomat.runtime.apps``).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from functools import lru_cache
from pathlib import Path
from types import ModuleType

from django.conf import settings
from django.utils.translation import gettext as _

from otomat.catalog.errors import CheckError

PRODUCT_CHECK_RE = re.compile(r"^product:([A-Za-z_][\w.]*):([A-Za-z_]\w*)$")
TIMEOUT = 15.0  # seconds: the customer is waiting on the form
_sandbox: ModuleType | None = None


def use_sandbox(sandbox: ModuleType) -> None:
    """Run product checks with ``sandbox`` (``resolve_mode``, ``build_launch``,
    ``make_preexec``, ``Limits``: the runtime's sandbox module)."""
    global _sandbox
    _sandbox = sandbox
    _sandbox_mode.cache_clear()


def is_product_check(name: str) -> bool:
    return bool(PRODUCT_CHECK_RE.match(name))


@lru_cache(maxsize=1)
def _sandbox_mode() -> tuple[str, str | None]:
    sandbox = _sandbox
    if sandbox is None:
        raise CheckError(_("The sandbox for product checks is not available."))
    try:
        mode, bwrap, _reason = sandbox.resolve_mode(
            settings.RUNTIME_SANDBOX, scratch=Path(tempfile.mkdtemp(prefix="otomat-selftest-"))
        )
    except RuntimeError:
        raise CheckError(_("The sandbox for product checks is not available.")) from None
    return mode, bwrap


def run_product_check(name: str, value: str, *, source_dir: Path | None) -> str:
    """Run the product check ``name`` on ``value``; returns the confirmation or raises
    CheckError with the product's reason (or why the check could not run)."""
    match = PRODUCT_CHECK_RE.match(name)
    if match is None or source_dir is None:
        raise CheckError(_("This check cannot run here."))
    mode, bwrap = _sandbox_mode()
    sandbox = _sandbox
    with tempfile.TemporaryDirectory(prefix="otomat-check-") as scratch:
        launch = sandbox.build_launch(
            mode=mode,
            bwrap=bwrap,
            source_dir=Path(source_dir),
            data_dir=Path(scratch),
            entry=None,
            command=[sys.executable, "-m", "otomat.catalog.check_runner"],
            control_fd=2,
            instance_id=None,
        )
        request = json.dumps({"entry": f"{match.group(1)}:{match.group(2)}", "value": value})
        try:
            done = subprocess.run(
                launch.argv,
                input=request + "\n",
                capture_output=True,
                text=True,
                env=launch.env,
                cwd=launch.cwd,
                timeout=TIMEOUT,
                preexec_fn=sandbox.make_preexec(sandbox.Limits(), pdeathsig=True),
            )
        except subprocess.TimeoutExpired:
            raise CheckError(
                _("The check took longer than %(s)d seconds.") % {"s": TIMEOUT}
            ) from None
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    try:
        result = json.loads(lines[-1])
    except (IndexError, ValueError):
        raise CheckError(
            _("The check could not run (exit code %(code)s).") % {"code": done.returncode}
        ) from None
    if not result.get("ok"):
        raise CheckError(str(result.get("message") or _("Not accepted.")))
    return str(result.get("message", ""))
