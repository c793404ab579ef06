"""Command line entry point: ``python -m otomat.tgemu``."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import sys
from pathlib import Path

from aiohttp import web

from .persistence import open_state
from .ratelimit import RateLimits
from .server import create_app
from .state import Limits

log = logging.getLogger("otomat.tgemu")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m otomat.tgemu",
        description=(
            "Local Telegram Bot API emulator. Bots use http://HOST:PORT/bot<token>/<method> as "
            "their API server; people chat with them at http://HOST:PORT/; tests drive it through "
            "the JSON control API under /control/. Staff-only control calls need --control-token, or a "
            "loopback client in development mode."
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
            "SQLite store that keeps bots (tokens, usernames, commands, webhooks), users, groups, "
            "messages and pending updates across restarts; created if missing, written "
            "incrementally a fraction of a second after each change. A PATH ending in .json "
            "names the old JSON state file: the store is then PATH with the suffix .sqlite3, and "
            "the JSON file is migrated into it once (and renamed to PATH.migrated). Without it "
            "everything is in memory only."
        ),
    )
    parser.add_argument(
        "--control-token",
        default=os.environ.get("TGEMU_CONTROL_TOKEN") or None,
        metavar="TOKEN",
        help=(
            "secret that staff-only control calls (listing bots and their tokens, creating and "
            "deleting bots, reset, settings) must send as 'Authorization: Bearer TOKEN'; default "
            "$TGEMU_CONTROL_TOKEN. Without it (development mode) those calls are answered only "
            "for direct connections from this machine"
        ),
    )
    parser.add_argument(
        "--rate-limits",
        choices=["on", "off"],
        default="on",
        help="answer 429 when a bot sends faster than Telegram allows (default: %(default)s)",
    )
    defaults = RateLimits()
    parser.add_argument(
        "--bot-rate",
        type=_positive,
        default=defaults.bot_per_second,
        metavar="PER_SECOND",
        help="messages per second one bot may send overall (default: %(default)s)",
    )
    parser.add_argument(
        "--private-chat-rate",
        type=_positive,
        default=defaults.private_chat_per_second,
        metavar="PER_SECOND",
        help="messages per second to one private chat, after a burst (default: %(default)s)",
    )
    parser.add_argument(
        "--private-chat-burst",
        type=int,
        default=defaults.private_chat_burst,
        metavar="N",
        help="messages a bot may send to a private chat at once (default: %(default)s)",
    )
    parser.add_argument(
        "--group-rate",
        type=_positive,
        default=defaults.group_per_minute,
        metavar="PER_MINUTE",
        help="messages per minute to one group or channel (default: %(default)s)",
    )
    parser.add_argument(
        "--max-upload-mb",
        type=_positive,
        default=50,
        metavar="MB",
        help="largest file a bot or person may upload, in MB (default: %(default)s, Telegram's)",
    )
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="stderr log level; 'debug' logs one line per request (default: %(default)s)",
    )
    return parser


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from exc
    if not 0 < value <= 1_000_000:
        raise argparse.ArgumentTypeError(f"must be a positive number up to 1000000: {text!r}")
    return value


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


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
    if args.private_chat_burst < 1:
        print("tgemu: --private-chat-burst must be at least 1", file=sys.stderr)
        return 2
    rate_limits = RateLimits(
        enabled=args.rate_limits == "on",
        bot_per_second=args.bot_rate,
        private_chat_per_second=args.private_chat_rate,
        private_chat_burst=args.private_chat_burst,
        group_per_minute=args.group_rate,
    )
    limits = Limits(max_upload_bytes=int(args.max_upload_mb * 1024 * 1024))
    try:
        state = open_state(args.state, limits=limits)
    except (ValueError, OSError) as exc:
        print(f"tgemu: cannot load state file: {exc}", file=sys.stderr)
        return 2
    if args.state is not None:
        log.info("state store %s: %d bot(s) loaded", state.path, len(state.bots))
    state.rate_limiter.configure(rate_limits)
    if args.control_token is not None and len(args.control_token) < 16:
        print("tgemu: --control-token must be at least 16 characters", file=sys.stderr)
        return 2
    if args.control_token is None and not _is_loopback(args.host):
        log.warning(
            "listening on %s without --control-token: staff-only control calls are answered "
            "for loopback clients only",
            args.host,
        )
    app = create_app(state, control_token=args.control_token)
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
