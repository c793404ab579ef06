"""The production layout in deploy/: the systemd units pass `systemd-analyze verify` without a
warning (where systemd is installed), the compose file passes a schema check of the parts of
the Compose specification it uses, every command they start is a real `otomat` command, and
every OTOMAT_* setting they name is one Otomat reads."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
UNITS = sorted((DEPLOY / "systemd").glob("otomat*"))
SETTINGS_SOURCE = "\n".join(
    path.read_text() for path in [ROOT / "otomat/settings.py", *(ROOT / "otomat/lib").glob("*.py")]
)


def _known_setting(name: str) -> bool:
    # Every setting can also be given as NAME_FILE (otomat.lib.env); the secret and encryption
    # keys are read by name pieces in settings.py ("OTOMAT_" + "SECRET_KEY").
    base = name.removesuffix("_FILE")
    pieces = base.removeprefix("OTOMAT_").lower()
    return f'"{base}"' in SETTINGS_SOURCE or f'_persistent_secret("{pieces}"' in SETTINGS_SOURCE


def _cli_commands() -> set[str]:
    from otomat.cli import build_parser

    parser = build_parser()
    (sub,) = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    return set(sub.choices)


def test_the_units_cover_every_service():
    names = {unit.name for unit in UNITS}
    assert {
        "otomat-web.service",
        "otomat-worker@.service",
        "otomat-scheduler.service",
        "otomat-runner.service",
        "otomat.target",
    } <= names


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_the_systemd_units_verify_without_a_warning(tmp_path):
    # The units name the production paths; point them at this checkout's executable and a
    # scratch data directory so that verify can check that the programs exist.
    otomat = Path(sys.executable).parent / "otomat"
    assert otomat.exists()
    (tmp_path / "otomat.env").write_text("")
    for unit in UNITS:
        text = (
            unit.read_text()
            .replace("/opt/otomat/.venv/bin/otomat", str(otomat))
            .replace("/etc/otomat/otomat.env", str(tmp_path / "otomat.env"))
            .replace("/var/lib/otomat", str(tmp_path))
        )
        (tmp_path / unit.name).write_text(text)
    (tmp_path / "otomat-worker@1.service").write_text(
        (tmp_path / "otomat-worker@.service").read_text()
    )
    (tmp_path / "otomat-worker@2.service").write_text(
        (tmp_path / "otomat-worker@.service").read_text()
    )
    units = [
        str(p)
        for p in sorted(tmp_path.glob("otomat*"))
        if p.suffix in (".service", ".target") and "@." not in p.name
    ]
    done = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *units],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0 and done.stderr.strip() == "", done.stderr


def test_the_units_start_real_commands():
    commands = _cli_commands()
    for unit in UNITS:
        for line in unit.read_text().splitlines():
            if line.startswith("ExecStart="):
                argv = line.removeprefix("ExecStart=").split()
                assert argv[0] == "/opt/otomat/.venv/bin/otomat", unit.name
                assert argv[1] in commands, f"{unit.name}: otomat {argv[1]} does not exist"


def test_the_environment_example_names_only_real_settings():
    names = re.findall(r"^(OTOMAT_[A-Z0-9_]+)=", (DEPLOY / "otomat.env.example").read_text(), re.M)
    assert "OTOMAT_DATABASE_URL" in names and "OTOMAT_ENCRYPTION_KEYS_FILE" in names
    unknown = [name for name in names if not _known_setting(name)]
    assert unknown == []


# The parts of the Compose specification (compose-spec.io) this file uses, as JSON Schema.
_COMMAND = {"type": "array", "items": {"type": "string"}, "minItems": 1}
_SERVICE = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "image": {"type": "string"},
        "build": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "context": {"type": "string"},
                "dockerfile": {"type": "string"},
                "target": {"type": "string"},
            },
            "required": ["context"],
        },
        "restart": {"enum": ["no", "always", "on-failure", "unless-stopped"]},
        "command": _COMMAND,
        "env_file": {"type": "string"},
        "environment": {"type": "object", "additionalProperties": {"type": ["string", "number"]}},
        "volumes": {"type": "array", "items": {"type": "string", "pattern": r"^[\w./-]+:/"}},
        "ports": {"type": "array", "items": {"type": "string", "pattern": r"^[\d.:]+:\d+$"}},
        "depends_on": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "properties": {
                    "condition": {
                        "enum": [
                            "service_started",
                            "service_healthy",
                            "service_completed_successfully",
                        ]
                    }
                },
                "required": ["condition"],
            },
        },
        "healthcheck": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "test": _COMMAND,
                "interval": {"type": "string", "pattern": r"^\d+[smh]$"},
                "timeout": {"type": "string", "pattern": r"^\d+[smh]$"},
                "retries": {"type": "integer", "minimum": 1},
            },
            "required": ["test"],
        },
        "deploy": {
            "type": "object",
            "properties": {"replicas": {"type": "integer", "minimum": 1}},
            "additionalProperties": False,
        },
        "security_opt": {"type": "array", "items": {"type": "string"}},
    },
    "anyOf": [{"required": ["image"]}, {"required": ["build"]}],
}
COMPOSE_SCHEMA = {
    "type": "object",
    "properties": {
        "services": {"type": "object", "additionalProperties": _SERVICE, "minProperties": 1},
        "volumes": {"type": "object"},
    },
    "patternProperties": {"^x-": {}},
    "additionalProperties": False,
    "required": ["services"],
}


def test_the_compose_file_is_valid_and_complete():
    yaml = pytest.importorskip("yaml")
    import jsonschema

    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    jsonschema.validate(compose, COMPOSE_SCHEMA)
    services = compose["services"]
    assert {"web", "worker", "scheduler", "runner", "postgres", "redis"} <= set(services)
    commands = _cli_commands()
    for name, service in services.items():
        for other in service.get("depends_on", {}):
            assert other in services, f"{name} depends on the unknown service {other}"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert source.startswith((".", "/")) or source in compose["volumes"], volume
        command = service.get("command", [])
        if command[:1] == ["otomat"]:
            assert command[1] in commands, f"{name}: otomat {command[1]} does not exist"
        for variable in service.get("environment", {}):
            if variable.startswith("OTOMAT_"):
                assert _known_setting(variable), f"{name}: {variable} is not a setting"
    # The platform's services share one data volume and the RQ queue on the Redis service.
    for name in ("web", "worker", "scheduler", "runner"):
        assert "data:/var/lib/otomat" in services[name]["volumes"]
        assert services[name]["environment"]["OTOMAT_TASK_BACKEND"] == "redis"
    dockerfile = (
        DEPLOY / services["web"]["build"]["context"] / services["web"]["build"]["dockerfile"]
    )
    assert dockerfile.resolve().exists(), f"{dockerfile} is missing"
