"""Otomat settings: every value comes from an ``OTOMAT_*`` environment variable with an embedded
default, so that one command runs everything on a fresh machine (SQLite in WAL mode, the database
task queue, the built-in Telegram emulator). See docs/configuration.md for each variable."""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from otomat.lib.env import env_bool, env_float, env_int, env_list, env_path, env_str

PACKAGE_DIR = Path(__file__).resolve().parent
BASE_DIR = PACKAGE_DIR.parent

# Everything Otomat writes (database, secret keys, product files, instance data, logs) lives here.
# It is never visible to a sandboxed bot process.
DATA_DIR = env_path("OTOMAT_DATA_DIR", Path.cwd() / "var")
DATA_DIR.mkdir(parents=True, exist_ok=True)


def _persistent_secret(name: str, generate) -> str:
    """Read a secret from the environment, else from DATA_DIR/keys/<name>, generating it once."""
    value = env_str(f"OTOMAT_{name.upper()}", "")
    if value:
        return value
    key_file = DATA_DIR / "keys" / name
    if not key_file.exists():
        key_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        key_file.touch(mode=0o600)
        key_file.write_text(generate())
    return key_file.read_text().strip()


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


SECRET_KEY = _persistent_secret("secret_key", lambda: secrets.token_urlsafe(50))
# Fernet keys for secrets at rest, newest first (comma separated): rotation = prepend a new key.
ENCRYPTION_KEYS = [
    key.strip()
    for key in _persistent_secret("encryption_keys", _fernet_key).split(",")
    if key.strip()
]

DEBUG = env_bool("OTOMAT_DEBUG", False)
ALLOWED_HOSTS = env_list("OTOMAT_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("OTOMAT_CSRF_TRUSTED_ORIGINS", [])
BASE_URL = env_str("OTOMAT_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
# otomat.lib.http (every outbound request to an address people type): allow private, loopback and
# link-local addresses. Only for tests and a demo on one machine; never in production.
HTTP_ALLOW_PRIVATE = env_bool("OTOMAT_HTTP_ALLOW_PRIVATE", False)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "django_tasks",
    "django_tasks_db",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "axes",
    # Only for its static files: the API docs page then loads Swagger UI from this server, not
    # from a CDN that a self-hosted installation cannot count on.
    "ninja",
    "otomat.accounts",
    "otomat.catalog",
    "otomat.instances",
    "otomat.billing",
    "otomat.notify",
    "otomat.support",
    "otomat.runtime",
    "otomat.botdata",
    "otomat.api",
    "otomat.ops",
    "otomat.monitoring",
    "otomat.projects",
    "otomat.projects.booking",
    "otomat.projects.offers",
    "otomat.projects.board",
    "otomat.hooks",
    "otomat.web",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "otomat.accounts.middleware.AccountLocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "otomat.accounts.middleware.AccountTimezoneMiddleware",
    "otomat.accounts.middleware.TwoFactorRequiredMiddleware",
    # Last: turns a locked-out login attempt (on any form, /admin/login/ too) into the lock page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "otomat.urls"
WSGI_APPLICATION = "otomat.wsgi.application"
ASGI_APPLICATION = "otomat.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [PACKAGE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "otomat.accounts.context_processors.current_account",
            ],
        },
    },
]

# Database: SQLite (WAL) under DATA_DIR by default; OTOMAT_DATABASE_URL for PostgreSQL or MariaDB,
# e.g. postgres://user@127.0.0.1:5432/otomat or mysql://root@127.0.0.1:3306/otomat.
_database_url = env_str("OTOMAT_DATABASE_URL", "")
_SQLITE_OPTIONS = {
    # The runner, the worker and the web server share one file: wait on locks instead of failing,
    # and take the write lock at BEGIN so two writers never deadlock on a lock upgrade.
    "timeout": 30,
    "transaction_mode": "IMMEDIATE",
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
}
if _database_url.startswith("sqlite"):
    DATABASES = {"default": dj_database_url.parse(_database_url, conn_max_age=60)}
    DATABASES["default"]["OPTIONS"] = dict(_SQLITE_OPTIONS)
elif _database_url:
    if _database_url.startswith("mysql"):
        import pymysql

        pymysql.version_info = (2, 2, 7, "final", 0)  # Django checks mysqlclient's version
        pymysql.install_as_MySQLdb()
    DATABASES = {"default": dj_database_url.parse(_database_url, conn_max_age=60)}
    if DATABASES["default"]["ENGINE"] == "django.db.backends.mysql":
        DATABASES["default"].setdefault("OPTIONS", {})["charset"] = "utf8mb4"
        DATABASES["default"]["TEST"] = {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": DATA_DIR / "otomat.sqlite3",
            "OPTIONS": dict(_SQLITE_OPTIONS),
            # Kept by the web server's threads between requests (otomat.asgi).
            "CONN_MAX_AGE": 60,
            # A file (not :memory:) so the runner process started by end-to-end tests sees it.
            "TEST": {"NAME": str(DATA_DIR / "test-otomat.sqlite3")},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
# django-axes first: it refuses every authenticate() call (every login form, the admin's too)
# for a locked-out email and address before a password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "otomat.accounts.backends.EmailBackend",
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "web:home"
LOGOUT_REDIRECT_URL = "web:home"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Login throttling (django-axes): this many failed passwords or two-factor codes for one email
# from one address lock that pair out for the cool-off (seconds); a success clears the count.
LOGIN_MAX_FAILURES = env_int("OTOMAT_LOGIN_MAX_FAILURES", 5, minimum=1)
LOGIN_FAILURE_WINDOW = env_int("OTOMAT_LOGIN_FAILURE_WINDOW", 900, minimum=1)  # seconds
AXES_FAILURE_LIMIT = LOGIN_MAX_FAILURES
AXES_COOLOFF_TIME = timedelta(seconds=LOGIN_FAILURE_WINDOW)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_USERNAME_CALLABLE = "otomat.accounts.throttle.username_of"
AXES_CLIENT_IP_CALLABLE = "otomat.accounts.throttle.client_ip"
AXES_LOCKOUT_CALLABLE = "otomat.accounts.throttle.lockout_response"
AXES_DISABLE_ACCESS_LOG = True  # successful logins are in the audit log
# Two-factor authentication (django-otp, TOTP + recovery codes): owner and staff must enrol
# before any staff page when on. The demo (`otomat run`) turns it off.
REQUIRE_STAFF_2FA = env_bool("OTOMAT_REQUIRE_STAFF_2FA", True)
OTP_TOTP_ISSUER = env_str("OTOMAT_2FA_ISSUER", "Otomat")

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("id", _("Indonesian")), ("pl", _("Polish"))]
LOCALE_PATHS = [PACKAGE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)  # WhiteNoise warns about a missing root even with finders
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True  # serve straight from the apps' static/ dirs; no collectstatic needed
MEDIA_ROOT = DATA_DIR / "media"

# `otomat run` without OTOMAT_EMAIL_BACKEND or OTOMAT_EMAIL_HOST keeps mail in the staff outbox
# page instead (otomat.notify.outbox.OutboxBackend).
EMAIL_BACKEND = env_str("OTOMAT_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("OTOMAT_FROM_EMAIL", "otomat@localhost")
EMAIL_HOST = env_str("OTOMAT_EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("OTOMAT_EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("OTOMAT_EMAIL_USER", "")
EMAIL_HOST_PASSWORD = env_str("OTOMAT_EMAIL_PASSWORD", "")  # or OTOMAT_EMAIL_PASSWORD_FILE
EMAIL_USE_TLS = env_bool("OTOMAT_EMAIL_USE_TLS", False)  # STARTTLS, usually port 587
EMAIL_USE_SSL = env_bool("OTOMAT_EMAIL_USE_SSL", False)  # implicit TLS, usually port 465
EMAIL_TIMEOUT = env_int("OTOMAT_EMAIL_TIMEOUT", 30, minimum=1)
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("Set only one of OTOMAT_EMAIL_USE_TLS and OTOMAT_EMAIL_USE_SSL")

# The owner's Telegram bot: billing notices and reminders go to people who linked their chat.
# Empty: notices go by email only.
OWNER_BOT_TOKEN = env_str("OTOMAT_OWNER_BOT_TOKEN", "")
OWNER_BOT_USERNAME = env_str("OTOMAT_OWNER_BOT_USERNAME", "")

# Support: where inbound email arrives. The webhook (POST /support/inbound/email/) needs the
# shared secret; the IMAP poller runs when a host is set.
SUPPORT_INBOUND_SECRET = env_str("OTOMAT_SUPPORT_INBOUND_SECRET", "")
SUPPORT_FROM_EMAIL = env_str("OTOMAT_SUPPORT_FROM_EMAIL", "support@otomat.local")
SUPPORT_IMAP_HOST = env_str("OTOMAT_SUPPORT_IMAP_HOST", "")
SUPPORT_IMAP_PORT = env_int("OTOMAT_SUPPORT_IMAP_PORT", 993, minimum=1)
SUPPORT_IMAP_SSL = env_bool("OTOMAT_SUPPORT_IMAP_SSL", True)
SUPPORT_IMAP_USER = env_str("OTOMAT_SUPPORT_IMAP_USER", "")
SUPPORT_IMAP_PASSWORD = env_str("OTOMAT_SUPPORT_IMAP_PASSWORD", "")
SUPPORT_ATTACHMENT_MAX_BYTES = env_int("OTOMAT_SUPPORT_ATTACHMENT_MAX_BYTES", 5 * 1024 * 1024)
# What an instance without a plan's support terms gets.
SUPPORT_DEFAULT_FREE_DAYS = env_int("OTOMAT_SUPPORT_DEFAULT_FREE_DAYS", 14, minimum=0)
SUPPORT_DEFAULT_REVISIONS = env_int("OTOMAT_SUPPORT_DEFAULT_REVISIONS", 0, minimum=0)

# How often the scheduler enqueues the billing (dunning) run, in seconds.
BILLING_RUN_SECONDS = env_int("OTOMAT_BILLING_RUN_SECONDS", 60, minimum=5)
# Payment callbacks that fail verification: after this many from one address within the window,
# that address is answered 429 (nothing stored) until the window ends; 0 turns it off.
CALLBACK_REJECTS_PER_SOURCE = env_int("OTOMAT_CALLBACK_REJECTS_PER_SOURCE", 20, minimum=0)
CALLBACK_REJECT_WINDOW_SECONDS = env_int("OTOMAT_CALLBACK_REJECT_WINDOW_SECONDS", 600, minimum=1)
# The public estimator and contact form: leads and saved estimates one address may send an hour
# (a 429 page past it); 0 turns a limit off.
PROJECTS_LEADS_PER_HOUR = env_int("OTOMAT_PROJECTS_LEADS_PER_HOUR", 5, minimum=0)
PROJECTS_ESTIMATES_PER_HOUR = env_int("OTOMAT_PROJECTS_ESTIMATES_PER_HOUR", 30, minimum=0)

# "default" is each process's own memory; "shared" is one cache for every process of this
# machine (the web server's workers, the task worker), in files under the data directory: the
# billing dashboard's figures, dropped by whichever process changes an invoice.
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "shared": {
        "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
        "LOCATION": str(DATA_DIR / "cache"),
    },
}

# Web server processes (``otomat web``, ``otomat run``): one per core, since one process uses
# one core. Each worker is a process of its own, with its own heartbeat (otomat.ops.heartbeats).
WEB_WORKERS = env_int("OTOMAT_WEB_WORKERS", os.cpu_count() or 1, minimum=1)

# Background tasks: the database queue by default (nothing else to run); RQ on Redis to scale
# out over several workers and machines (OTOMAT_TASK_BACKEND=redis, OTOMAT_REDIS_URL).
_TASK_BACKENDS = {
    "database": "django_tasks_db.DatabaseBackend",
    "redis": "django_tasks_rq.RQBackend",
}
TASK_BACKEND = env_str("OTOMAT_TASK_BACKEND", "database")
TASK_BACKEND = _TASK_BACKENDS.get(TASK_BACKEND, TASK_BACKEND)
REDIS_URL = env_str("OTOMAT_REDIS_URL", "redis://127.0.0.1:6379/0")
TASKS = {"default": {"BACKEND": TASK_BACKEND}}
TASKS_USE_RQ = TASK_BACKEND == "django_tasks_rq.RQBackend"
if TASKS_USE_RQ:
    INSTALLED_APPS += ["django_rq", "django_tasks_rq"]
    TASKS["default"]["QUEUES"] = ["default"]
RQ_QUEUES = {"default": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 3600}}
# A task whose worker died mid-run is queued again, then failed (otomat.ops.stale).
TASK_HEARTBEAT_SECONDS = env_float("OTOMAT_TASK_HEARTBEAT_SECONDS", 10.0, minimum=0.1)
TASK_HEARTBEAT_TIMEOUT_SECONDS = env_int("OTOMAT_TASK_HEARTBEAT_TIMEOUT_SECONDS", 60, minimum=1)
TASK_STALE_SECONDS = env_int("OTOMAT_TASK_STALE_SECONDS", 3600, minimum=1)
TASK_MAX_ATTEMPTS = env_int("OTOMAT_TASK_MAX_ATTEMPTS", 3, minimum=1)

# Platform health (otomat.ops.heartbeats, otomat.monitoring.platform, docs/operations.md): every
# service beats every HEARTBEAT_SECONDS and is taken for dead after HEARTBEAT_STALE_SECONDS of
# silence; /readyz wants READY_SERVICES fresh. Alert thresholds for the machines' health.
HEARTBEAT_SECONDS = env_float("OTOMAT_HEARTBEAT_SECONDS", 15.0, minimum=0.1)
HEARTBEAT_STALE_SECONDS = env_int("OTOMAT_HEARTBEAT_STALE_SECONDS", 60, minimum=1)
READY_SERVICES = env_list("OTOMAT_READY_SERVICES", ["runner", "worker", "scheduler"])
if set(READY_SERVICES) - {"web", "worker", "scheduler", "runner"}:
    raise ImproperlyConfigured(
        f"OTOMAT_READY_SERVICES={','.join(READY_SERVICES)!r}: use web, worker, scheduler, runner"
    )
DISK_ALERT_PERCENT = env_float("OTOMAT_DISK_ALERT_PERCENT", 90.0, minimum=0)
DISK_PATHS = env_list("OTOMAT_DISK_PATHS", [])  # watched besides the data dir and database
MEMORY_ALERT_PERCENT = env_float("OTOMAT_MEMORY_ALERT_PERCENT", 95.0, minimum=0)
LOAD_ALERT_PER_CPU = env_float("OTOMAT_LOAD_ALERT_PER_CPU", 4.0, minimum=0)  # 5-minute load
DATABASE_SIZE_ALERT_MB = env_int("OTOMAT_DATABASE_SIZE_ALERT_MB", 0, minimum=0)  # 0: no alert
QUEUE_LAG_ALERT_SECONDS = env_int("OTOMAT_QUEUE_LAG_ALERT_SECONDS", 300, minimum=1)
# /metrics (otomat.monitoring.metrics): a bearer token, unless the operator makes it public.
METRICS_TOKEN = env_str("OTOMAT_METRICS_TOKEN", "")  # or OTOMAT_METRICS_TOKEN_FILE
METRICS_PUBLIC = env_bool("OTOMAT_METRICS_PUBLIC", False)
# Alerts (otomat.monitoring, docs/monitoring.md): the scheduler's scan interval (the runner's
# failures also poke a scan at once), and at most this many monitoring messages per person and
# channel an hour.
MONITORING_SCAN_SECONDS = env_int("OTOMAT_MONITORING_SCAN_SECONDS", 15, minimum=1)
MONITORING_NOTICES_PER_HOUR = env_int("OTOMAT_MONITORING_NOTICES_PER_HOUR", 20, minimum=1)
# Instance checks (otomat.monitoring.checks, docs/monitoring.md): an install or start that does not
# answer within PROVISION_TIMEOUT_SECONDS ends failed; each running bot is asked at the Bot API
# (getMe, getWebhookInfo in webhook mode) every TELEGRAM_CHECK_SECONDS, at most
# TELEGRAM_CHECK_BATCH bots per scan, TELEGRAM_CHECK_CONCURRENCY requests at a time.
PROVISION_TIMEOUT_SECONDS = env_int("OTOMAT_PROVISION_TIMEOUT_SECONDS", 120, minimum=10)
TELEGRAM_CHECK_SECONDS = env_int("OTOMAT_TELEGRAM_CHECK_SECONDS", 300, minimum=10)
TELEGRAM_CHECK_BATCH = env_int("OTOMAT_TELEGRAM_CHECK_BATCH", 500, minimum=1)
TELEGRAM_CHECK_CONCURRENCY = env_int("OTOMAT_TELEGRAM_CHECK_CONCURRENCY", 8, minimum=1)
# Uptime history (otomat.monitoring.uptime): hourly rows kept this many days, daily rows longer.
UPTIME_HOURLY_DAYS = env_int("OTOMAT_UPTIME_HOURLY_DAYS", 14, minimum=2)
UPTIME_DAILY_DAYS = env_int("OTOMAT_UPTIME_DAILY_DAYS", 400, minimum=31)

# Retention in days, 0 = kept for ever (otomat.ops.retention; docs/operations.md).
RETENTION_DAYS = {
    "rejected_callbacks": env_int("OTOMAT_RETENTION_REJECTED_CALLBACK_DAYS", 7, minimum=0),
    "callbacks": env_int("OTOMAT_RETENTION_CALLBACK_DAYS", 180, minimum=0),
    "payment_callbacks": env_int("OTOMAT_RETENTION_PAYMENT_CALLBACK_DAYS", 0, minimum=0),
    "notifications": env_int("OTOMAT_RETENTION_NOTIFICATION_DAYS", 90, minimum=0),
    "instance_events": env_int("OTOMAT_RETENTION_INSTANCE_EVENT_DAYS", 365, minimum=0),
    "billing_actions": env_int("OTOMAT_RETENTION_BILLING_ACTION_DAYS", 730, minimum=0),
    "task_results": env_int("OTOMAT_RETENTION_TASK_RESULT_DAYS", 1, minimum=0),
    "failed_task_results": env_int("OTOMAT_RETENTION_FAILED_TASK_RESULT_DAYS", 14, minimum=0),
    "audit": env_int("OTOMAT_RETENTION_AUDIT_DAYS", 0, minimum=0),
}
RETENTION_BATCH = env_int("OTOMAT_RETENTION_BATCH", 500, minimum=1)  # rows per DELETE
RETENTION_MAX_ROWS = env_int("OTOMAT_RETENTION_MAX_ROWS", 50_000, minimum=1)  # per rule and run

# HTTPS (docs/operations.md, "Production"). An https:// BASE_URL turns on secure cookies and a
# year of HSTS; the proxy header is trusted only when named, because a client could send it too.
_HTTPS = BASE_URL.startswith("https://")
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("OTOMAT_SECURE_COOKIES", _HTTPS)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = env_int("OTOMAT_HSTS_SECONDS", 31_536_000 if _HTTPS else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("OTOMAT_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("OTOMAT_HSTS_PRELOAD", False)
SECURE_SSL_REDIRECT = env_bool("OTOMAT_SSL_REDIRECT", False)
# Local health checks and scrapers speak plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
_proxy_ssl_header = env_str("OTOMAT_SECURE_PROXY_SSL_HEADER", "").strip()
if _proxy_ssl_header:
    # e.g. "X-Forwarded-Proto": the request is https when the proxy sets it to "https".
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + _proxy_ssl_header.upper().replace("-", "_"), "https")

# Runtime ------------------------------------------------------------------------------------
# Bot API base URL given to every bot; the built-in emulator in the main command.
BOT_API_URL = env_str("OTOMAT_BOT_API_URL", "https://api.telegram.org").rstrip("/")
# The built-in emulator that sandboxes and "try it" instances use, even when customers' bots talk
# to Telegram; its web chat is linked for people at EMULATOR_PUBLIC_URL. Empty: no sandboxes.
EMULATOR_URL = env_str("OTOMAT_EMULATOR_URL", "").rstrip("/")
EMULATOR_PUBLIC_URL = env_str("OTOMAT_EMULATOR_PUBLIC_URL", EMULATOR_URL).rstrip("/")
SANDBOX_HOURS = env_int("OTOMAT_SANDBOX_HOURS", 24, minimum=1)
TRY_MAX_ACTIVE = env_int("OTOMAT_TRY_MAX_ACTIVE", 10, minimum=0)  # concurrent trials, all visitors
PRODUCTS_DIR = DATA_DIR / "products"  # imported product versions, one folder per version
INSTANCES_DIR = DATA_DIR / "instances"  # private data dir per instance
LOGS_DIR = DATA_DIR / "logs"
RUN_DIR = DATA_DIR / "run"  # pidfiles and the runner's notification socket
RUNTIME_BACKEND = env_str("OTOMAT_RUNTIME_BACKEND", "process")
RUNTIME_SANDBOX = env_str("OTOMAT_RUNTIME_SANDBOX", "auto")  # auto | bwrap | none
RUNTIME_SPARES = env_int("OTOMAT_RUNTIME_SPARES", 1, minimum=0)
# Restarts: the first after RUNTIME_BACKOFF_SECONDS, doubling up to a minute; this many unexpected
# exits within RUNTIME_CRASH_LOOP_WINDOW seconds is a crash loop and the instance becomes failed.
RUNTIME_BACKOFF_SECONDS = env_float("OTOMAT_RUNTIME_BACKOFF_SECONDS", 1.0, minimum=0.05)
RUNTIME_CRASH_LOOP_EXITS = env_int("OTOMAT_RUNTIME_CRASH_LOOP_EXITS", 5, minimum=1)
RUNTIME_CRASH_LOOP_WINDOW = env_float("OTOMAT_RUNTIME_CRASH_LOOP_WINDOW", 120.0, minimum=1)
# Shared runtime: instances per host process, and the webhook ingress. Without a public URL bots
# long-poll (the default); with one, Telegram delivers to the ingress the runner serves on
# INGRESS_LISTEN, behind your TLS proxy at INGRESS_PUBLIC_URL.
# Where shared-runtime instances keep their data: "database" (namespaced in the platform database,
# served to hosts by the runner per instance token; hosts get no database URL or key) or "sqlite"
# (a file per instance).
SHARED_STORE = env_str("OTOMAT_SHARED_STORE", "database")
SHARED_INSTANCES_PER_HOST = env_int("OTOMAT_SHARED_INSTANCES_PER_HOST", 500, minimum=1)
INGRESS_LISTEN = env_str("OTOMAT_INGRESS_LISTEN", "127.0.0.1:8443")
INGRESS_PUBLIC_URL = env_str("OTOMAT_INGRESS_PUBLIC_URL", "").rstrip("/")
RUNNER_RECONCILE_SECONDS = env_int("OTOMAT_RUNNER_RECONCILE_SECONDS", 10, minimum=1)
# Kubernetes runtime (OTOMAT_RUNTIME_BACKEND=kubernetes; docs/kubernetes.md): the namespace the
# runner applies Secrets and Deployments in, the cluster's credentials (a kubeconfig file and
# context; empty: the in-cluster service account when the runner runs in a pod, else
# ~/.kube/config), and the product image, "{slug}" and "{version}" filled in per version.
K8S_NAMESPACE = env_str("OTOMAT_K8S_NAMESPACE", "otomat")
K8S_KUBECONFIG = env_str("OTOMAT_K8S_KUBECONFIG", "")
K8S_CONTEXT = env_str("OTOMAT_K8S_CONTEXT", "")
K8S_IMAGE = env_str("OTOMAT_K8S_IMAGE", "otomat-product:{slug}-{version}")
K8S_IMAGE_PULL_SECRET = env_str("OTOMAT_K8S_IMAGE_PULL_SECRET", "")
K8S_CPU_LIMIT = env_str("OTOMAT_K8S_CPU_LIMIT", "1")
K8S_HOST_MEMORY_MB = env_int("OTOMAT_K8S_HOST_MEMORY_MB", 2048, minimum=64)
# Each process instance's /data: a PersistentVolumeClaim of this size (the cluster's default
# storage class unless named); empty: an emptyDir, lost whenever the pod is replaced.
K8S_DATA_SIZE = env_str("OTOMAT_K8S_DATA_SIZE", "1Gi")
K8S_STORAGE_CLASS = env_str("OTOMAT_K8S_STORAGE_CLASS", "")
# Between full resyncs (every RUNNER_RESYNC_SECONDS) the runner reads only instances changed since
# its previous look, less this margin for late commits and other machines' clocks (docs/runtime.md).
RUNNER_RESYNC_SECONDS = env_int("OTOMAT_RUNNER_RESYNC_SECONDS", 300, minimum=1)
RUNNER_CHANGE_MARGIN_SECONDS = env_int("OTOMAT_RUNNER_CHANGE_MARGIN_SECONDS", 30, minimum=0)
# Shared runtime: hosts kept started and imported, not yet given to a product version, so a
# version's first instance does not wait for a host's imports.
SHARED_SPARE_HOSTS = env_int("OTOMAT_SHARED_SPARE_HOSTS", 1, minimum=0)
# Terminated instances keep their data this many days before it is deleted.
TERMINATED_DATA_GRACE_DAYS = env_int("OTOMAT_TERMINATED_DATA_GRACE_DAYS", 7, minimum=0)

# Product archives: refused beyond these limits (size bombs).
PRODUCT_ARCHIVE_MAX_BYTES = env_int("OTOMAT_PRODUCT_ARCHIVE_MAX_BYTES", 20 * 1024 * 1024)
PRODUCT_UNPACKED_MAX_BYTES = env_int("OTOMAT_PRODUCT_UNPACKED_MAX_BYTES", 100 * 1024 * 1024)
PRODUCT_MAX_FILES = env_int("OTOMAT_PRODUCT_MAX_FILES", 2000)
DATA_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024

# "plain" lines, or "json": one JSON object per line for log shippers (otomat.lib.jsonlog).
LOG_FORMAT = env_str("OTOMAT_LOG_FORMAT", "plain").strip().lower()
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"OTOMAT_LOG_FORMAT={LOG_FORMAT!r} is not plain or json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {"()": "otomat.lib.jsonlog.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": env_str("OTOMAT_LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # One line per notable event, what the main command's console shows (otomat.notify.events).
        "otomat.events": {"level": "INFO"},
        # httpx logs request URLs at INFO, and a Bot API URL contains the bot token.
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        "axes": {"level": "WARNING"},  # every failed login at INFO otherwise
    },
}
