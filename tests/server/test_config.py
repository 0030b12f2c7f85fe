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
