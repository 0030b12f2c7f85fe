"""docker-compose.yml: the production shape (PostgreSQL, CouchDB 3, server) with healthchecks."""

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"


def test_compose_services_and_health():
    """The three services exist, each has a healthcheck, and the server waits for healthy dependencies."""
    spec = yaml.safe_load(COMPOSE.read_text())
    services = spec["services"]
    assert set(services) == {"postgres", "couchdb", "server"}
    assert services["couchdb"]["image"].startswith("couchdb:3")
    for name, service in services.items():
        assert "test" in service["healthcheck"], name
    depends = services["server"]["depends_on"]
    assert depends == {
        "postgres": {"condition": "service_healthy"},
        "couchdb": {"condition": "service_healthy"},
    }
    env = services["server"]["environment"]
    assert env["DATABASE_URL"].startswith("postgresql://") and "@postgres:5432/" in env["DATABASE_URL"]
    assert "@couchdb:5984" in env["COUCHDB_URL"]
    # The server image migrates at start: its command is `curbstop serve`, which runs Alembic first.
    assert 'CMD ["curbstop", "serve"]' in (ROOT / "Dockerfile").read_text()


@pytest.mark.skipif(
    shutil.which("docker") is None
    or subprocess.run(["docker", "compose", "version"], capture_output=True, check=False).returncode != 0,
    reason="the docker compose plugin is not installed on this machine",
)
def test_docker_compose_config_accepts_the_file():
    """`docker compose config` parses and validates the file."""
    result = subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE), "config", "-q"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
