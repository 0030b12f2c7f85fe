"""docker-compose.yml: the production shape (PostgreSQL, CouchDB 3, server) with healthchecks."""

import re
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
    assert "CURBSTOP_COUCHDB_PUBLIC_URL" in env
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


SECRETS = ("POSTGRES_PASSWORD", "COUCHDB_ADMIN_USER", "COUCHDB_ADMIN_PASSWORD", "CURBSTOP_SECRET_KEY")


def test_compose_has_no_default_secrets():
    """Every secret is required from the environment (`${NAME:?...}`): none has a default value, and
    neither the old key `change-me-to-a-long-random-string` nor the password `curbstop` appears."""
    text = COMPOSE.read_text()
    assert "change-me" not in text
    for name in SECRETS:
        uses = re.findall(r"\$\{" + name + r"([^}]*)\}", text)
        assert uses, name
        for use in uses:
            assert use.startswith(":?"), f"{name} has a default or may be empty: ${{{name}{use}}}"
    assert ":-curbstop}" not in text
    couch_env = yaml.safe_load(text)["services"]["couchdb"]["environment"]
    assert couch_env["COUCHDB_PASSWORD"].startswith("${COUCHDB_ADMIN_PASSWORD:?")


def test_compose_publishes_only_the_server_port():
    """Only the server publishes a port; CouchDB's 5984 and PostgreSQL's 5432 stay on the compose network."""
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    published = {name: s["ports"] for name, s in services.items() if s.get("ports")}
    assert set(published) == {"server"}
    assert all(str(p).endswith(":8000") for p in published["server"])


def test_env_example_documents_every_secret_and_env_is_not_shipped():
    """.env.example names every secret the compose file requires, with no value filled in; .env is
    ignored by git and left out of the image."""
    example = (ROOT / ".env.example").read_text()
    for name in SECRETS:
        if name == "COUCHDB_ADMIN_USER":
            continue  # a user name, not a secret: the example suggests one
        assert re.search(rf"^{name}=$", example, re.MULTILINE), name
    assert ".env" in (ROOT / ".gitignore").read_text().splitlines()
    assert ".env" in (ROOT / ".dockerignore").read_text().splitlines()
