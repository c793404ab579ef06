"""The production environment documented in docs/operations.md passes Django's deployment check
without a warning, and the HTTPS, proxy and SMTP variables reach Django's settings."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
MARKER = "<!-- production-env"


def documented_env() -> dict[str, str]:
    text = (REPO / "docs" / "operations.md").read_text()
    block = text[text.index(MARKER) :]
    block = block[
        block.index("```sh") + len("```sh") : block.index("```", block.index("```sh") + 5)
    ]
    env = {}
    for line in block.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            env[name] = value
    return env


def run_django(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """``args`` in a fresh Python with ``env`` on top of a clean OTOMAT_-free environment; files
    named by *_FILE variables are made in tmp_path, the database becomes SQLite there."""
    from cryptography.fernet import Fernet

    env = dict(env)
    contents = {
        "OTOMAT_SECRET_KEY_FILE": secrets.token_urlsafe(50),
        "OTOMAT_ENCRYPTION_KEYS_FILE": Fernet.generate_key().decode(),
        "OTOMAT_EMAIL_PASSWORD_FILE": "smtp-secret",
    }
    for name in [n for n in env if n.endswith("_FILE")]:
        path = tmp_path / name.lower()
        path.write_text(contents.get(name, "x"))
        env[name] = str(path)
    env["OTOMAT_DATABASE_URL"] = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    base = {k: v for k, v in os.environ.items() if not k.startswith("OTOMAT_")}
    base.update(
        env, OTOMAT_DATA_DIR=str(tmp_path / "data"), DJANGO_SETTINGS_MODULE="otomat.settings"
    )
    return subprocess.run(
        [sys.executable, *args], env=base, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )


def test_the_documented_production_settings_pass_check_deploy(tmp_path):
    env = documented_env()
    assert env["OTOMAT_BASE_URL"].startswith("https://")
    result = run_django(
        tmp_path, env, "-m", "django", "check", "--deploy", "--fail-level", "WARNING"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues (0 silenced)" in result.stdout
    assert "WARNING" not in result.stderr


def test_without_the_production_settings_check_deploy_warns(tmp_path):
    """The check is real: the same run without HTTPS settings fails."""
    env = {"OTOMAT_DEBUG": "0", "OTOMAT_ALLOWED_HOSTS": "otomat.example.com"}
    result = run_django(
        tmp_path, env, "-m", "django", "check", "--deploy", "--fail-level", "WARNING"
    )
    assert result.returncode != 0
    for code in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert code in result.stdout + result.stderr


PRINT_SETTINGS = """
import json, django
django.setup()
from django.conf import settings as s
print(json.dumps({name: getattr(s, name, None) for name in [
    "SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD",
    "SECURE_SSL_REDIRECT", "SECURE_PROXY_SSL_HEADER", "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE", "EMAIL_HOST", "EMAIL_PORT", "EMAIL_HOST_USER", "EMAIL_HOST_PASSWORD",
    "EMAIL_USE_TLS", "EMAIL_USE_SSL", "REQUIRE_STAFF_2FA", "AXES_FAILURE_LIMIT"]}))
"""


def test_the_documented_settings_reach_django(tmp_path):
    result = run_django(tmp_path, documented_env(), "-c", PRINT_SETTINGS)
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout.strip().splitlines()[-1])
    assert values == {
        "SECURE_HSTS_SECONDS": 31_536_000,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
        "SECURE_HSTS_PRELOAD": True,
        "SECURE_SSL_REDIRECT": True,
        "SECURE_PROXY_SSL_HEADER": ["HTTP_X_FORWARDED_PROTO", "https"],
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "EMAIL_HOST": "smtp.example.com",
        "EMAIL_PORT": 587,
        "EMAIL_HOST_USER": "otomat@example.com",
        "EMAIL_HOST_PASSWORD": "smtp-secret",
        "EMAIL_USE_TLS": True,
        "EMAIL_USE_SSL": False,
        "REQUIRE_STAFF_2FA": True,
        "AXES_FAILURE_LIMIT": 5,
    }


def test_plain_http_keeps_cookies_and_hsts_off_and_trusts_no_proxy_header(tmp_path):
    result = run_django(tmp_path, {}, "-c", PRINT_SETTINGS)
    values = json.loads(result.stdout.strip().splitlines()[-1])
    assert values["SECURE_HSTS_SECONDS"] == 0
    assert values["SESSION_COOKIE_SECURE"] is False
    assert values["SECURE_PROXY_SSL_HEADER"] is None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"OTOMAT_EMAIL_USE_TLS": "1", "OTOMAT_EMAIL_USE_SSL": "1"}, "only one of"),
        ({"OTOMAT_EMAIL_USE_TLS": "maybe"}, "OTOMAT_EMAIL_USE_TLS"),
        ({"OTOMAT_EMAIL_PORT": "0"}, "OTOMAT_EMAIL_PORT"),
        ({"OTOMAT_HSTS_SECONDS": "-1"}, "OTOMAT_HSTS_SECONDS"),
        ({"OTOMAT_REQUIRE_STAFF_2FA": "sometimes"}, "OTOMAT_REQUIRE_STAFF_2FA"),
        ({"OTOMAT_EMAIL_PASSWORD_FILE": "/nonexistent/smtp"}, "OTOMAT_EMAIL_PASSWORD_FILE"),
    ],
)
def test_bad_values_stop_with_a_message_naming_the_variable(tmp_path, env, message):
    base = {k: v for k, v in os.environ.items() if not k.startswith("OTOMAT_")}
    base.update(
        env, OTOMAT_DATA_DIR=str(tmp_path / "data"), DJANGO_SETTINGS_MODULE="otomat.settings"
    )
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env=base,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert re.search(re.escape(message), result.stderr)
