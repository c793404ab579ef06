"""Runs one product-defined live check inside the product's sandbox.

Invoked as ``python -m otomat.catalog.check_runner`` by ``otomat.catalog.product_checks`` with
one JSON line on stdin, ``{"entry": "module:function", "value": "..."}``; prints one JSON line,
``{"ok": true, "message": "..."}`` or ``{"ok": false, "message": "..."}``. The function returns a
short confirmation or raises ``ValueError`` with the reason for the customer. Imports no Django:
it runs with the product's code on the path and nothing of the platform's.
"""

from __future__ import annotations

import importlib
import json
import sys


def main() -> int:
    try:
        request = json.loads(sys.stdin.readline())
        module_name, _, function_name = str(request["entry"]).partition(":")
        value = request["value"]
    except (ValueError, KeyError, TypeError):
        print(json.dumps({"ok": False, "message": "The check received a malformed request."}))
        return 2
    try:
        function = getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError) as exc:
        print(json.dumps({"ok": False, "message": f"The product's check is missing: {exc}"}))
        return 2
    try:
        message = function(value)
    except ValueError as exc:
        print(json.dumps({"ok": False, "message": str(exc)[:500]}))
        return 0
    except Exception as exc:  # a bug in the product's check must not look like a refusal
        print(json.dumps({"ok": False, "message": f"The check failed ({type(exc).__name__})."}))
        return 1
    print(json.dumps({"ok": True, "message": str(message)[:500]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
