"""Command line entry point: ``python -m otomat.tgemu``."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from aiohttp import web

from .persistence import open_state
from .server import create_app

log = logging.getLogger("otomat.tgemu")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m otomat.tgemu",
        description=(
            "Local Telegram Bot API emulator. Bots use http://HOST:PORT/bot<token>/<method> as "
            "their API server; people chat with them at http://HOST:PORT/; tests drive it through "
            "the JSON control API under /control/. No authentication: keep it on loopback."
        ),
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    parser.add_argument(
        "--port", type=int, default=8081, help="port to listen on (default: %(default)s)"
    )
    parser.add_argument(
        "--state",
        type=Path,
        metavar="PATH",
        help=(
            "JSON file that keeps bots (tokens, usernames, commands, webhooks), users, groups, "
            "messages and pending updates across restarts; created if missing, written "
            "atomically shortly after each change. Without it everything is in memory only."
        ),
    )
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="stderr log level; 'debug' logs one line per request (default: %(default)s)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the emulator until interrupted. Returns the process exit status.

    Exits with 2 when the state file exists but cannot be read as a state file, rather than start
    empty and overwrite it.
    """
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        state = open_state(args.state)
    except (ValueError, OSError) as exc:
        print(f"tgemu: cannot load state file: {exc}", file=sys.stderr)
        return 2
    if args.state is not None:
        log.info("state file %s: %d bot(s) loaded", args.state, len(state.bots))
    app = create_app(state)
    try:
        web.run_app(
            app,
            host=args.host,
            port=args.port,
            access_log=None,  # the middleware logs requests at debug level, tokens redacted
            # run_app calls this once the socket is bound.
            print=lambda _banner: log.info(
                "Telegram emulator listening on http://%s:%d/", args.host, args.port
            ),
            handler_cancellation=True,  # free long polls whose client went away
        )
    except OSError as exc:
        print(f"tgemu: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0
