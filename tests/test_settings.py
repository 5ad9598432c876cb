"""Start-up refuses to run without secrets when DEBUG is off."""

import os
import subprocess
import sys

import pytest

CHECK = "import django; django.setup()"


def start(**env):
    base = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DEBUG", "DJANGO_SECRET_KEY", "HUBSYNC_ENCRYPTION_KEYS"}
    }
    return subprocess.run(
        [sys.executable, "-c", CHECK],
        env={**base, "DJANGO_SETTINGS_MODULE": "hubsync.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("missing", ["DJANGO_SECRET_KEY", "HUBSYNC_ENCRYPTION_KEYS"])
def test_a_missing_secret_stops_start_up_by_name(missing):
    env = {
        "DEBUG": "0",
        "DJANGO_SECRET_KEY": "test-secret-key",
        "HUBSYNC_ENCRYPTION_KEYS": "ZGV2LW9ubHktZmVybmV0LWtleS1ub3Qtc2VjcmV0ISE=",
    }
    del env[missing]

    result = start(**env)

    assert result.returncode != 0
    assert missing in result.stderr


def test_debug_runs_on_development_defaults():
    assert start(DEBUG="1").returncode == 0
