"""Settings that guard the deployment: no published or short signing key."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from pydantic import ValidationError

from server.config import MIN_SECRET_KEY_CHARS, Settings


@pytest.mark.parametrize(
    "key", ["change-me-to-a-long-random-string", "CHANGE-ME-TO-A-LONG-RANDOM-STRING", "x" * 31, "secret"]
)
def test_short_or_published_secret_key_is_refused(tmp_path, key):
    """A published example key (the old compose default) or one under 32 characters is refused, and the
    message names CURBSTOP_SECRET_KEY and how to make a good one."""
    with pytest.raises(ValidationError) as caught:
        Settings(var_dir=tmp_path, secret_key=key)
    message = str(caught.value)
    assert "CURBSTOP_SECRET_KEY" in message and "token_urlsafe" in message


def test_long_key_and_generated_key_are_accepted(tmp_path):
    """A key of 32 characters is accepted; an empty one means the generated key kept in var_dir (0600)."""
    assert Settings(var_dir=tmp_path, secret_key="k" * MIN_SECRET_KEY_CHARS).resolved_secret_key() == "k" * 32
    generated = Settings(var_dir=tmp_path / "var").resolved_secret_key()
    assert len(generated) >= MIN_SECRET_KEY_CHARS
    assert (tmp_path / "var" / "secret_key").stat().st_mode & 0o777 == 0o600


def test_serve_refuses_to_start_with_the_old_compose_key(tmp_path):
    """`curbstop serve` with CURBSTOP_SECRET_KEY=change-me-to-a-long-random-string exits 2 naming the
    setting, before it listens."""
    env = {
        **os.environ,
        "CURBSTOP_SECRET_KEY": "change-me-to-a-long-random-string",
        "CURBSTOP_VAR_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}",
    }
    result = subprocess.run(
        [sys.executable, "-m", "server.cli", "serve", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "refusing to start" in result.stderr and "CURBSTOP_SECRET_KEY" in result.stderr


def _mode(path) -> int:
    return path.stat().st_mode & 0o777


def test_var_files_are_private(tmp_path):
    """The SQLite database (password hashes, customers), its WAL files and the generated key are created
    0600 in a 0700 var directory, whatever the umask; an existing world-readable database is tightened."""
    from server.db import make_engine
    from server.migrate import upgrade

    old_umask = os.umask(0o022)
    try:
        settings = Settings(var_dir=tmp_path / "var")
        url = settings.resolved_database_url()
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        settings.resolved_secret_key()
        var = tmp_path / "var"
        assert _mode(var) == 0o700
        for name in ("curbstop.db", "secret_key"):
            assert _mode(var / name) == 0o600, name
        for extra in var.glob("curbstop.db-*"):
            assert _mode(extra) == 0o600, extra.name
        (var / "curbstop.db").chmod(0o644)
        var.chmod(0o755)
        settings.resolved_database_url()
        assert _mode(var / "curbstop.db") == 0o600 and _mode(var) == 0o700
    finally:
        os.umask(old_umask)


def test_two_processes_agree_on_the_generated_key(tmp_path):
    """The generated key is linked into place whole: a second reader gets the same key, never a part."""
    first = Settings(var_dir=tmp_path).resolved_secret_key()
    assert Settings(var_dir=tmp_path).resolved_secret_key() == first
    assert not list(tmp_path.glob(".secret_key.*"))
