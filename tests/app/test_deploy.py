"""deploy/compose.yaml stays consistent with the code: its commands parse, its settings exist, its roles are all
there (no Docker engine runs here, so this is what can be checked without starting it)."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from app.__main__ import build_parser
from app.config import Settings

COMPOSE = Path(__file__).resolve().parents[2] / "deploy" / "compose.yaml"


@pytest.fixture(scope="module")
def compose() -> dict:
    yaml = pytest.importorskip("yaml")
    return yaml.safe_load(COMPOSE.read_text())


def test_every_role_of_the_scaled_topology_is_there(compose):
    services = compose["services"]
    assert {"postgres", "nats", "seaweedfs", "web", "worker", "scheduler", "proxy", "migrate"} <= set(services)
    assert services["web"]["deploy"]["replicas"], "N web replicas"
    assert services["worker"]["deploy"]["replicas"], "M workers"
    assert "replicas" not in services["scheduler"].get("deploy", {}), "one scheduler"


def test_every_foryou_command_parses_and_every_setting_exists(compose):
    parser = build_parser()
    known = {f"FORYOU_{spec.name.upper()}" for spec in fields(Settings)}
    commands = 0
    for name, service in compose["services"].items():
        command = service.get("command")
        if command and command[0] == "foryou":
            parser.parse_args(command[1:])  # SystemExit on an unknown role or flag
            commands += 1
            unknown = {key for key in service.get("environment", {}) if key.startswith("FORYOU_")} - known
            assert not unknown, f"{name}: settings the app does not read: {unknown}"
    assert commands == 4  # migrate, web, worker, scheduler
    env = compose["services"]["web"]["environment"]
    assert env["FORYOU_DATABASE_URL"].startswith("postgresql+asyncpg://")
    assert env["FORYOU_EVENT_STREAM_URL"].startswith("nats://")
    assert env["FORYOU_STORAGE_URL"].startswith("s3://")
