"""``otomat``: the operations command line.

otomat run            set up and run everything (web, worker, runner, emulator) with demo data
otomat web            the web server only          otomat runner   the runner only
otomat worker         the task worker only         otomat tgemu    the Telegram emulator only
otomat scheduler      the periodic job scheduler
otomat createowner    create or reset the owner    otomat product import PATH
otomat demo           create the demo owner, customer and products
otomat manage ...     any Django management command (migrate, shell, ...)
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "otomat.settings")
    import django

    django.setup()


def cmd_manage(args: argparse.Namespace) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "otomat.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(["otomat manage", *args.rest])
    return 0


def cmd_createowner(args: argparse.Namespace) -> int:
    _setup_django()
    from django.contrib.auth.password_validation import validate_password
    from django.core.exceptions import ValidationError

    from otomat.accounts.services import create_owner

    password = args.password or os.environ.get("OTOMAT_OWNER_PASSWORD", "")
    if not password:
        import getpass

        password = getpass.getpass("Owner password: ")
    try:
        validate_password(password)
    except ValidationError as exc:
        print("Password refused: " + " ".join(exc.messages), file=sys.stderr)
        return 2
    user = create_owner(email=args.email, password=password)
    print(f"Owner {user.email} is ready.")
    return 0


def cmd_product_import(args: argparse.Namespace) -> int:
    _setup_django()
    from pathlib import Path

    from otomat.catalog.errors import CatalogError
    from otomat.catalog.services import import_product

    try:
        version = import_product(Path(args.path), actor=None)
    except CatalogError as exc:
        print(f"Refused: {exc}", file=sys.stderr)
        return 2
    print(f"Imported {version.product.slug} {version.version}.")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    _setup_django()
    from otomat.demo import ensure_demo_data

    for line in ensure_demo_data():
        print(line)
    return 0


def cmd_web(args: argparse.Namespace) -> int:
    """Serve the portal with ``--workers`` (default ``OTOMAT_WEB_WORKERS``) uvicorn processes
    sharing one socket: one process uses one core. Each worker loads the application itself
    (``otomat.asgi``: its own heartbeat thread and database connections); uvicorn's parent
    process only starts them, restarts a worker that dies and stops them all on SIGTERM."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "otomat.settings")
    import uvicorn
    from django.conf import settings

    workers = args.workers if args.workers is not None else settings.WEB_WORKERS
    if workers < 1:
        print(f"--workers must be at least 1, not {workers}.", file=sys.stderr)
        return 2
    uvicorn.run(
        "otomat.asgi:application",
        host=args.host,
        port=args.port,
        workers=workers,
        log_level="warning",
        lifespan="off",
    )
    return 0


def cmd_runner(args: argparse.Namespace) -> int:
    _setup_django()
    from otomat.runtime.runner import run_runner

    return run_runner()


def cmd_scheduler(args: argparse.Namespace) -> int:
    _setup_django()
    from otomat.ops.scheduler import run_scheduler

    return run_scheduler()


def cmd_worker(args: argparse.Namespace) -> int:
    _setup_django()
    from django.conf import settings
    from django.core.management import call_command

    from otomat.ops import heartbeats

    heartbeats.start(heartbeats.Service.WORKER)  # at once, not only at its first task
    # A stop asked before the queue's worker has set its own signal handlers (it is still
    # importing) is a clean stop too: exit, so the heartbeat is marked stopped (atexit).
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    if settings.TASKS_USE_RQ:
        # RQ: each job is taken by exactly one worker; the scheduler part runs deferred tasks.
        call_command(
            "rqworker",
            "default",
            job_class="django_tasks_rq.Job",
            worker_class="otomat.ops.rq.Worker",  # beats from its main process, not the horses
            with_scheduler=True,
        )
    else:
        call_command("db_worker", interval=1)
    return 0


def cmd_tgemu(args: argparse.Namespace) -> int:
    from otomat.tgemu.cli import main as tgemu_main

    return tgemu_main(args.rest)


def cmd_fakepay(args: argparse.Namespace) -> int:
    from otomat.billing.gateways.fakes.serve import serve

    return serve(base_port=args.port, base_url=args.otomat_url.rstrip("/"))


def cmd_run(args: argparse.Namespace) -> int:
    from otomat.supervisor import run_all

    return run_all(
        host=args.host,
        port=args.port,
        emulator_port=args.emulator_port,
        demo=not args.no_demo,
        verbose=args.verbose,
    )


def cmd_backup(args: argparse.Namespace) -> int:
    _setup_django()
    from otomat.ops.backup import BackupError, backup

    try:
        result = backup(Path(args.path), with_keys=not args.without_keys)
    except BackupError as exc:
        print(f"otomat backup: {exc}", file=sys.stderr)
        return 2
    for line in result.lines:
        print(line)
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    # Not _setup_django() first: the target must be seen empty before settings write keys to it.
    from otomat.ops.backup import BackupError, restore

    def migrate() -> None:
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)

    try:
        lines = restore(Path(args.path), migrate=migrate)
    except BackupError as exc:
        print(f"otomat restore: {exc}", file=sys.stderr)
        return 2
    for line in lines:
        print(line)
    print("restored: start it with `otomat run` (or the services) on this data directory")
    return 0


def cmd_compilemessages(args: argparse.Namespace) -> int:
    from otomat.lib.i18n import compile_catalogs

    for line in compile_catalogs():
        print(line)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="otomat",
        description="Otomat: sell, install, run and bill prebuilt bots. "
        "Settings come from OTOMAT_* environment variables (docs/configuration.md).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="set up and run everything: web, worker, runner, emulator")
    run.add_argument("--host", default="127.0.0.1", help="web server address (default 127.0.0.1)")
    run.add_argument("--port", type=int, default=8000, help="web server port (default 8000)")
    run.add_argument(
        "--emulator-port",
        type=int,
        default=8081,
        help="Telegram emulator port (default 8081); ignored when OTOMAT_EMULATOR_URL is set",
    )
    run.add_argument(
        "--no-demo", action="store_true", help="do not create the demo owner and customer"
    )
    run.add_argument(
        "--verbose",
        action="store_true",
        help="show every service's log on the console (always written to DATA_DIR/logs/)",
    )
    run.set_defaults(func=cmd_run)

    web = sub.add_parser("web", help="run the web server only")
    web.add_argument("--host", default="127.0.0.1")
    web.add_argument("--port", type=int, default=8000)
    web.add_argument(
        "--workers",
        type=int,
        default=None,
        help="web server processes (default OTOMAT_WEB_WORKERS: one per CPU)",
    )
    web.set_defaults(func=cmd_web)

    sub.add_parser("runner", help="run the runner (reconciler) only").set_defaults(func=cmd_runner)
    fakepay = sub.add_parser(
        "fakepay",
        help="run local fake payment providers for the demo (no real money; never in production)",
    )
    fakepay.add_argument(
        "--port", type=int, default=8091, help="first port: Midtrans, then Stripe, Xendit, P24"
    )
    fakepay.add_argument(
        "--otomat-url", default="http://127.0.0.1:8000", help="where the fakes send callbacks"
    )
    fakepay.set_defaults(func=cmd_fakepay)
    sub.add_parser("worker", help="run the background task worker only").set_defaults(
        func=cmd_worker
    )
    sub.add_parser(
        "scheduler",
        help="run the periodic job scheduler only (enqueues tasks; one active at a time)",
    ).set_defaults(func=cmd_scheduler)

    tgemu = sub.add_parser("tgemu", help="run the Telegram Bot API emulator (see --help after it)")
    tgemu.add_argument("rest", nargs=argparse.REMAINDER)
    tgemu.set_defaults(func=cmd_tgemu)

    owner = sub.add_parser("createowner", help="create the owner, or reset their password")
    owner.add_argument("--email", required=True)
    owner.add_argument("--password", help="default: $OTOMAT_OWNER_PASSWORD, else asked")
    owner.set_defaults(func=cmd_createowner)

    product = sub.add_parser("product", help="manage products")
    product_sub = product.add_subparsers(dest="product_command", required=True, metavar="ACTION")
    imp = product_sub.add_parser("import", help="import a product version from a folder or archive")
    imp.add_argument("path", help="a folder with otomat.toml, or a .tar.gz/.zip of one")
    imp.set_defaults(func=cmd_product_import)

    sub.add_parser(
        "demo", help="create the demo owner, customer and products (idempotent)"
    ).set_defaults(func=cmd_demo)
    sub.add_parser("compilemessages", help="compile translations (no gettext needed)").set_defaults(
        func=cmd_compilemessages
    )
    backup = sub.add_parser(
        "backup",
        help="back up the database, keys, products and instance data into one archive",
    )
    backup.add_argument("path", help="the archive to write (a new .tar.gz file)")
    backup.add_argument(
        "--without-keys",
        action="store_true",
        help="leave the secret and encryption keys out (restoring then needs them in the "
        "environment)",
    )
    backup.set_defaults(func=cmd_backup)
    restore = sub.add_parser(
        "restore", help="restore an archive of `otomat backup` into an empty data directory"
    )
    restore.add_argument("path", help="the archive to read")
    restore.set_defaults(func=cmd_restore)
    manage = sub.add_parser("manage", help="run a Django management command")
    manage.add_argument("rest", nargs=argparse.REMAINDER)
    manage.set_defaults(func=cmd_manage)
    return parser


# Commands that hand everything after their name to another program's own option parser.
# argparse's REMAINDER does not take arguments that start with "--" right after a sub-command
# (`otomat tgemu --port 8081` would be "unrecognized arguments"), so these are split off first.
_PASS_THROUGH = {"tgemu": cmd_tgemu, "manage": cmd_manage}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in _PASS_THROUGH:
        return _PASS_THROUGH[argv[0]](argparse.Namespace(rest=argv[1:])) or 0
    parser = build_parser()
    args = parser.parse_args(argv)
    return args.func(args) or 0


if __name__ == "__main__":
    sys.exit(main())
