"""Typed settings: the only reader of the environment (variables prefixed CURBSTOP_, plus DATABASE_URL and COUCHDB_URL)."""

from __future__ import annotations

import contextlib
import os
import secrets
from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent

# A signing key shorter than this (characters) is refused: HS256 wants at least 256 bits of secret.
MIN_SECRET_KEY_CHARS = 32
# Keys that have been published (old compose default, documentation examples): anyone could forge with them.
KNOWN_SECRET_KEYS = frozenset(
    {
        "change-me-to-a-long-random-string",
        "changeme",
        "change-me",
        "secret",
        "curbstop",
    }
)


class Settings(BaseSettings):
    """Runtime configuration; every field can be set from the environment or a .env file."""

    model_config = SettingsConfigDict(env_prefix="CURBSTOP_", env_file=".env", extra="ignore")

    var_dir: Path = Field(default=REPO_ROOT / "var", description="local state: SQLite file, secrets, spools")
    database_url: str = Field(
        default="",
        validation_alias=AliasChoices("DATABASE_URL", "CURBSTOP_DATABASE_URL"),
        description="SQLAlchemy URL; empty means SQLite at <var_dir>/curbstop.db",
    )
    couchdb_url: str = Field(
        default="",
        validation_alias=AliasChoices("COUCHDB_URL", "CURBSTOP_COUCHDB_URL"),
        description="CouchDB server URL with admin credentials; empty means a local pouchdb-server",
    )
    couchdb_public_url: str = Field(
        default="",
        description="the CouchDB URL tablets replicate with, when it differs from COUCHDB_URL's host "
        "(behind a TLS reverse proxy, e.g. https://sync.example-water.org); empty means COUCHDB_URL's",
    )
    secret_key: str = Field(
        default="", description="JWT signing key; empty means a key kept in <var_dir>/secret_key"
    )
    signin_window_s: int = Field(
        default=15 * 60, ge=1, description="sign-in throttling: the sliding window failures are counted in"
    )
    signin_failures_per_user: int = Field(
        default=10, ge=1, description="failed sign-ins for one username within the window before a 429"
    )
    signin_failures_per_address: int = Field(
        default=50, ge=1, description="failed sign-ins from one client address within the window before a 429"
    )
    cors_origins: str = Field(
        default="",
        description="comma-separated browser origins allowed to call the API from another site "
        "(e.g. https://portal.example-water.org); empty (the default) allows none",
    )
    access_token_minutes: int = Field(default=12 * 60, ge=1, description="lifetime of a sign-in token")
    host: str = "127.0.0.1"
    port: int = 8000
    timezone: str = Field(default="America/Los_Angeles", description="the utility's local time zone")
    run_jobs_in_process: bool = Field(
        default=True,
        description="each API process also runs queued jobs; turn off when `curbstop worker`s do",
    )
    policy_file: Path | None = Field(
        default=None, description="order-generation policy (TOML); default built in"
    )
    rates_file: Path | None = Field(
        default=None, description="rate schedules (TOML); default server/adjustments/rates.toml"
    )
    adjustments_policy_file: Path | None = Field(
        default=None, description="adjustment policy (TOML); default server/adjustments/policy.toml"
    )
    tile_url: str = Field(
        default="",
        description="map tile server URL template for the office pages, e.g. https://tiles.example.com/{z}/{x}/{y}.png; "
        "empty draws the district's own streets from its service points (the demo, the tests, offline)",
    )
    tile_attribution: str = Field(default="", description="the tile server's attribution line, shown on maps")

    @field_validator("secret_key")
    @classmethod
    def _strong_key(cls, value: str) -> str:
        """Refuse a published or short signing key at start-up: tokens signed with it could be forged."""
        if not value:
            return value  # the key generated once into <var_dir>/secret_key
        how = "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(48))'"
        if value.strip().lower() in KNOWN_SECRET_KEYS:
            raise ValueError(
                f"CURBSTOP_SECRET_KEY is a published example value; anyone could forge sign-in tokens "
                f"with it. {how}, or leave it empty to use <var_dir>/secret_key"
            )
        if len(value) < MIN_SECRET_KEY_CHARS:
            raise ValueError(
                f"CURBSTOP_SECRET_KEY is {len(value)} characters; it needs at least {MIN_SECRET_KEY_CHARS}. "
                f"{how}, or leave it empty to use <var_dir>/secret_key"
            )
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        """Refuse a zone the tz database does not know at start-up, not at the first time shown."""
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"CURBSTOP_TIMEZONE {value!r} is not an IANA time zone name (e.g. America/Los_Angeles)"
            ) from None
        return value

    def cors_origin_list(self) -> list[str]:
        """The CORS origins, one per entry, without blanks or trailing slashes."""
        return [o.strip().rstrip("/") for o in self.cors_origins.split(",") if o.strip()]

    def resolved_database_url(self) -> str:
        """The SQLAlchemy URL to use, defaulting to the SQLite file in var_dir."""
        if self.database_url:
            url = self.database_url
            # Plain postgresql:// URLs (as docker and Heroku write them) use psycopg 3.
            if url.startswith("postgresql://") or url.startswith("postgres://"):
                url = "postgresql+psycopg://" + url.split("://", 1)[1]
            return url
        private_dir(self.var_dir)
        path = self.var_dir / "curbstop.db"
        # Password hashes and customers' data: this user only. SQLite gives its -wal and -shm files the
        # database file's mode, so creating the (empty, valid) file 0600 first covers them too.
        for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            if file == path or file.exists():
                private_file(file)
        return f"sqlite:///{path}"

    def resolved_secret_key(self) -> str:
        """The JWT key: configured, or generated once and kept in var_dir so restarts keep sessions."""
        if self.secret_key:
            return self.secret_key
        path = self.var_dir / "secret_key"
        if not path.exists():
            private_dir(self.var_dir)
            # Written aside, then linked into place: a process starting at the same moment either sees
            # no key or the whole key, and the first link wins.
            aside = private_file(path.with_name(f".secret_key.{os.getpid()}"), secrets.token_urlsafe(48))
            with contextlib.suppress(FileExistsError):
                os.link(aside, path)
            aside.unlink()
        else:
            private_file(path)  # tighten a key written before files were kept private
        return path.read_text().strip()


def private_dir(path: Path) -> Path:
    """Create a directory (and its parents) only this user may enter (0700); tighten it if it exists."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.chmod(0o700)
    return path


def private_file(path: Path, text: str | None = None) -> Path:
    """Create (or tighten) a file only this user may read (0600), never world-readable even briefly;
    with `text`, write it (replacing what was there)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if text is not None else 0)
    fd = os.open(path, flags, 0o600)
    try:
        if text is not None:
            os.write(fd, text.encode())
    finally:
        os.close(fd)
    path.chmod(0o600)
    return path


@lru_cache
def get_settings() -> Settings:
    """Settings for this process (cached; tests build their own)."""
    return Settings()
