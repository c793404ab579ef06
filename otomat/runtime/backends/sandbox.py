"""How the process backend launches a program: bubblewrap command line, environment, rlimits.
Shared hosts use the same layout (``bwrap_argv``; see ``backends/shared.py``).

Inside a bwrap sandbox a program sees only:

* read-only system directories (``/usr`` and the ``/bin``, ``/lib*``, ``/sbin`` links or dirs) and
  the few ``/etc`` files name resolution and TLS need;
* read-only: the Python installation (``sys.base_prefix``) and the virtualenv (``sys.prefix``) at
  their own paths, the ``otomat`` package alone at ``/opt/otomat/otomat`` (never the repository
  root: the platform's data dir, database and key files must stay invisible), the product
  version's files at ``/opt/product``;
* read-write: its own data directory at ``/data`` (also ``HOME`` and the working directory), and
  a private ``/tmp``; fresh ``/proc`` and ``/dev``.

It runs in its own pid, ipc, uts (and cgroup when possible) namespaces with every capability
dropped, in a new session, and dies with the runner (``--die-with-parent``). The network
namespace stays shared because bots must reach the Bot API. Without bwrap the same clean
environment and rlimits apply, with ``cwd`` = data dir and ``PR_SET_PDEATHSIG``.
"""

from __future__ import annotations

import ctypes
import os
import resource
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import otomat
from otomat.botkit.protocol import CONTROL_FD_ENV, INSTANCE_ID_ENV

SANDBOX_MODES = ("auto", "bwrap", "none")

PRODUCT_MOUNT = "/opt/product"
OTOMAT_MOUNT = "/opt/otomat"  # the package is mounted at /opt/otomat/otomat
DATA_MOUNT = "/data"

# /etc entries needed for DNS, TLS, the dynamic linker and user lookups; nothing else of /etc.
ETC_ENTRIES = (
    "resolv.conf",
    "hosts",
    "nsswitch.conf",
    "host.conf",
    "gai.conf",
    "ssl",
    "ca-certificates",
    "ca-certificates.conf",
    "pki",
    "crypto-policies",
    "localtime",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "alternatives",
    "passwd",
    "group",
    "mime.types",
)
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")

PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Limits:
    """rlimits applied to every launched program (and inherited by its children).

    Memory: ``RLIMIT_DATA`` rather than ``RLIMIT_AS``. Since Linux 4.7 DATA counts the heap and
    private writable mappings — what a program actually dirties — while AS also counts every
    reserved-but-unused range: CPython and glibc reserve 64 MiB per malloc arena and 8 MiB per
    thread stack, so an idle aiogram bot shows ~500 MiB of address space and an AS limit would
    kill healthy bots at random. DATA still counts thread stacks and arena parts once they are
    made writable, hence a fixed headroom on top of the product's ``memory_mb``. (Exact RSS
    enforcement needs a cgroup v2 ``memory.max``, left to a delegated-cgroup deployment.)
    """

    memory_mb: int = 256
    memory_headroom_mb: int = 128
    nofile: int = 1024
    fsize_mb: int = 1024  # largest single file a program may write (store, exports)

    @property
    def data_bytes(self) -> int:
        return (self.memory_mb + self.memory_headroom_mb) * 1024 * 1024


@dataclass(frozen=True)
class Launch:
    """A ready-to-exec launch: argv, environment and working directory."""

    argv: list[str]
    env: dict[str, str]
    cwd: str
    sandboxed: bool
    data_dir_inside: str  # the data dir's path as the program sees it


def find_bwrap() -> str | None:
    return shutil.which("bwrap")


def python_roots() -> list[str]:
    """Directories holding the Python installation and its packages (bound read-only)."""
    roots: list[str] = []
    for prefix in (sys.base_prefix, sys.prefix, sys.exec_prefix):
        real = os.path.realpath(prefix)
        for path in (prefix, real):
            if path not in roots and not any(path.startswith(r + os.sep) for r in roots):
                roots.append(path)
    return roots


def otomat_package_dir() -> str:
    return os.path.dirname(os.path.abspath(otomat.__file__))


def _system_binds() -> list[str]:
    args: list[str] = []
    for path in SYSTEM_DIRS:
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    for name in ETC_ENTRIES:
        path = f"/etc/{name}"
        if os.path.lexists(path):
            args += ["--ro-bind-try", path, path]
    return args


def clean_env(
    *,
    home: str,
    pythonpath: str,
    control_fd: int,
    instance_id: str | None,
) -> dict[str, str]:
    """The whole environment a program gets: nothing of the runner's (no ``OTOMAT_*`` settings,
    no secrets) except the control fd and the instance id."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": home,
        "LANG": "C.UTF-8",
        "PYTHONPATH": pythonpath,
        "PYTHONDONTWRITEBYTECODE": "1",
        CONTROL_FD_ENV: str(control_fd),
    }
    if instance_id is not None:
        env[INSTANCE_ID_ENV] = instance_id
    return env


def bwrap_argv(bwrap: str, *, source_dir: Path, data_dir: Path, env: dict[str, str]) -> list[str]:
    """The bubblewrap command line (without the program) for the layout in the module
    docstring: ``source_dir`` read-only at ``/opt/product``, ``data_dir`` read-write at
    ``/data``, and exactly ``env`` as the environment. Shared hosts use it too."""
    argv = [bwrap, *_system_binds()]
    # The private /tmp first: binds below may live under /tmp (a checkout in /tmp/x keeps
    # its virtualenv there) and must be mounted on top of it, not hidden by it.
    argv += ["--tmpfs", "/tmp", "--proc", "/proc", "--dev", "/dev"]  # noqa: S108 - private
    for root in python_roots():
        argv += ["--ro-bind", root, root]
    argv += ["--ro-bind", otomat_package_dir(), f"{OTOMAT_MOUNT}/otomat"]
    argv += ["--ro-bind", str(source_dir), PRODUCT_MOUNT]
    argv += ["--bind", str(data_dir), DATA_MOUNT]
    argv += ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
    argv += ["--hostname", "otomat", "--cap-drop", "ALL"]
    argv += ["--die-with-parent", "--new-session", "--chdir", DATA_MOUNT, "--clearenv"]
    for key, value in env.items():
        argv += ["--setenv", key, value]
    return argv


def program_argv(
    *,
    entry: str | None,
    command: Sequence[str] | None,
    source_dir: Path,
    source_inside: str,
    python: str,
) -> list[str]:
    """The program itself: the botkit host for ``entry`` products, else the product's argv.

    A command runs in the data directory, so arguments naming files of the product
    (``["python3", "main.py"]``, ``["./run.sh"]``) are rewritten to their path under
    ``source_inside`` (where the product directory is visible to the program).
    """
    if entry:
        # -u: unbuffered stdout, so print() output reaches the log at once.
        return [
            python,
            "-u",
            "-m",
            "otomat.botkit.host",
            "--source",
            source_inside,
            "--entry",
            entry,
        ]
    if not command:
        raise ValueError("an instance spec needs an entry or a command")
    argv = list(command)
    for i, arg in enumerate(argv):
        if os.path.isabs(arg) or (i == 0 and "/" not in arg):
            continue  # absolute, or a program looked up on PATH
        if (source_dir / arg).exists():
            argv[i] = os.path.normpath(f"{source_inside}/{arg}")
    return argv


def build_launch(
    *,
    mode: str,
    bwrap: str | None,
    source_dir: Path,
    data_dir: Path,
    entry: str | None,
    command: Sequence[str] | None,
    control_fd: int,
    instance_id: str | None,
    python: str = sys.executable,
) -> Launch:
    """Build the launch for one program. ``mode`` is ``"bwrap"`` or ``"none"`` (already
    resolved); ``data_dir`` is the host directory to expose as the program's data dir.

    Relative file arguments of ``command`` are resolved in the product directory.
    """
    if mode == "bwrap":
        if not bwrap:
            raise RuntimeError("bwrap sandbox requested but bwrap is not installed")
        env = clean_env(
            home=DATA_MOUNT,
            pythonpath=f"{OTOMAT_MOUNT}:{PRODUCT_MOUNT}",
            control_fd=control_fd,
            instance_id=instance_id,
        )
        argv = bwrap_argv(bwrap, source_dir=source_dir, data_dir=data_dir, env=env)
        program = program_argv(
            entry=entry,
            command=command,
            source_dir=source_dir,
            source_inside=PRODUCT_MOUNT,
            python=python,
        )
        # The environment is passed by --setenv after --clearenv; bwrap itself gets only PATH.
        return Launch(
            argv=[*argv, "--", *program],
            env={"PATH": env["PATH"]},
            cwd="/",
            sandboxed=True,
            data_dir_inside=DATA_MOUNT,
        )
    if mode != "none":
        raise ValueError(f"unknown sandbox mode {mode!r}")
    pythonpath = f"{os.path.dirname(otomat_package_dir())}:{source_dir}"
    env = clean_env(
        home=str(data_dir), pythonpath=pythonpath, control_fd=control_fd, instance_id=instance_id
    )
    program = program_argv(
        entry=entry,
        command=command,
        source_dir=source_dir,
        source_inside=str(source_dir),
        python=python,
    )
    return Launch(
        argv=program, env=env, cwd=str(data_dir), sandboxed=False, data_dir_inside=str(data_dir)
    )


def make_preexec(limits: Limits, *, pdeathsig: bool) -> Callable[[], None]:
    """A ``preexec_fn`` applying ``limits`` and, when asked, ``PR_SET_PDEATHSIG(SIGKILL)``.

    It runs in the forked child before exec, so it only calls async-signal-tolerant primitives;
    libc is loaded here, in the parent, not after the fork.
    """
    libc = ctypes.CDLL(None, use_errno=True) if pdeathsig else None
    parent = os.getpid()
    mib = 1024 * 1024

    def preexec() -> None:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_NOFILE, (limits.nofile, limits.nofile))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.fsize_mb * mib, limits.fsize_mb * mib))
        resource.setrlimit(resource.RLIMIT_DATA, (limits.data_bytes, limits.data_bytes))
        if libc is not None:
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            # The runner may have died between fork and prctl: then nobody would kill us.
            if os.getppid() != parent:
                os._exit(1)

    return preexec


def bwrap_self_test(bwrap: str, *, scratch: Path, timeout: float = 15.0) -> str | None:
    """Run a trivial Python program in the real sandbox layout; return None when it works,
    else a one-line reason. Used by ``sandbox="auto"`` (and to fail fast with ``"bwrap"``)."""
    scratch.mkdir(parents=True, exist_ok=True)
    launch = build_launch(
        mode="bwrap",
        bwrap=bwrap,
        source_dir=scratch,
        data_dir=scratch,
        entry=None,
        command=[sys.executable, "-c", "import otomat.botkit.protocol; print('ok')"],
        control_fd=2,
        instance_id=None,
    )
    try:
        result = subprocess.run(
            launch.argv,
            env=launch.env,
            cwd=launch.cwd,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{type(exc).__name__}: {exc}"
    if result.returncode != 0 or result.stdout.strip() != b"ok":
        err = result.stderr.decode(errors="replace").strip().splitlines()
        return f"exit {result.returncode}: {err[-1] if err else 'no output'}"
    return None


def resolve_mode(setting: str, *, scratch: Path) -> tuple[str, str | None, str | None]:
    """Turn a sandbox setting (``auto`` | ``bwrap`` | ``none``) into ``(mode, bwrap, reason)``.

    ``mode`` is ``"bwrap"`` when bubblewrap is installed and its self-test passes in
    ``scratch`` (removed afterwards), else ``"none"`` with ``reason`` saying why. Raises
    RuntimeError when ``setting`` is ``"bwrap"`` and the sandbox does not work. Blocking: call
    it from a thread in async code."""
    if setting == "none":
        return "none", None, None
    bwrap = find_bwrap()
    reason: str | None = "bwrap is not installed"
    if bwrap:
        try:
            reason = bwrap_self_test(bwrap, scratch=scratch)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        if reason is None:
            return "bwrap", bwrap, None
    if setting == "bwrap":
        raise RuntimeError(f"sandbox=bwrap but the bwrap sandbox does not work: {reason}")
    return "none", None, reason
