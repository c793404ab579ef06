"""The URL of the database this process uses, for child processes that must reach the same one
(the runner in tests, shared hosts that keep instance data in the platform database)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote


def current_database_url() -> str:
    from django.db import connection

    db = connection.settings_dict
    engine = db["ENGINE"]
    if engine.endswith("sqlite3"):
        return f"sqlite:///{Path(db['NAME']).resolve()}"
    scheme = "postgres" if "postgresql" in engine else "mysql"
    auth = quote(db["USER"] or "") + (f":{quote(db['PASSWORD'])}" if db.get("PASSWORD") else "")
    return f"{scheme}://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or ''}/{db['NAME']}"
