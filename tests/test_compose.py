"""docker-compose.yml is not started here (no Docker engine); it is checked for consistency:
every app service runs an `eldercare` sub-command that exists, and sets only variables
that the settings read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from typer.main import get_command

from dispatch.cli import app
from dispatch.core.config import Settings

ROOT = Path(__file__).resolve().parents[1]


def _compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())  # type: ignore[no-any-return]


def _app_services() -> dict[str, Any]:
    return {name: s for name, s in _compose()["services"].items() if s.get("image") == "eldercare:latest"}


def test_every_app_service_runs_an_existing_eldercare_command() -> None:
    commands = get_command(app).commands  # type: ignore[attr-defined]
    services = _app_services()
    assert {"api-1", "api-2", "worker-1", "worker-2", "scheduler", "migrate"} <= set(services)
    for name, service in services.items():
        argv = service["command"]
        assert argv[0] == "eldercare", name
        assert argv[1] in commands, f"{name}: unknown sub-command {argv[1]!r}"
        known = {p.opts[0] for p in commands[argv[1]].params if getattr(p, "opts", None)}
        known |= {o for p in commands[argv[1]].params for o in (getattr(p, "secondary_opts", None) or [])}
        for option in (a for a in argv[2:] if a.startswith("--")):
            assert option.split("=")[0] in known, f"{name}: {argv[1]} has no option {option}"


def test_every_variable_is_read_by_the_settings() -> None:
    fields = {name.upper() for name in Settings.model_fields}
    for name, service in _app_services().items():
        unknown = set(service["environment"]) - fields
        assert not unknown, f"{name} sets variables the settings do not read: {unknown}"


def test_production_shape() -> None:
    compose = _compose()
    services = compose["services"]
    redis_cmd = services["redis"]["command"]
    assert "--appendonly" in redis_cmd and redis_cmd[redis_cmd.index("--appendfsync") + 1] == "everysec"
    for name in ("postgres", "redis", "api-1", "api-2"):
        assert "healthcheck" in services[name], name
    api_env = services["api-1"]["environment"]
    assert api_env["DATABASE_URL"].startswith("postgresql://") and api_env["REDIS_URL"].startswith("redis://")
    # Migrations run once, before any replica starts, so two APIs never race them.
    assert services["api-1"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
