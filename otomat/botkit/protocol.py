"""Constants of the protocol between a runtime backend and ``python -m otomat.botkit.host``.

Kept in a module without third-party imports so the runner can import it without paying for
aiogram. The protocol itself is described in docs/botkit.md.
"""

from __future__ import annotations

# Environment variable naming the file descriptor the host writes JSON-line control events to.
CONTROL_FD_ENV = "OTOMAT_CONTROL_FD"
# Environment variable with the instance id (absent for warm spares: they learn it on stdin).
INSTANCE_ID_ENV = "OTOMAT_INSTANCE_ID"

# Control events (the "event" key of each JSON line written to the control fd).
EVENT_SPARE = "spare"  # imports done, blocked on stdin waiting for the start line
EVENT_READY = "ready"  # getMe succeeded and polling started
EVENT_HEARTBEAT = "heartbeat"  # {"updates": N, "errors": M, "last_update": epoch|None}, often
EVENT_ERROR = "error"  # {"message": "..."} a handler raised; the bot keeps running
EVENT_FATAL = "fatal"  # {"reason": "...", "message": "..."} right before a permanent exit

# Exit codes with a meaning beyond "crashed". Both are permanent: restarting cannot help, so the
# backend goes to FAILED at once instead of burning through its restart budget.
EXIT_CONFIG_ERROR = 3  # bad start line, missing bot_token, entry point not importable
EXIT_INVALID_TOKEN = 78  # the Bot API answered 401/404 to getMe (EX_CONFIG in sysexits.h)

PERMANENT_EXIT_CODES = frozenset({EXIT_CONFIG_ERROR, EXIT_INVALID_TOKEN})

DEFAULT_HEARTBEAT_SECONDS = 5.0
