"""`molecule test` of each role's scenario: localhost against the simulator, no containers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import COLLECTIONS_DIR, REPO_ROOT

BIN_DIR = Path(sys.executable).parent
ROLES = ["license_defaults", "license_sync", "upgrade_21_1"]


@pytest.mark.parametrize("role", ROLES)
def test_molecule_scenario(role, tmp_path):
    env = {key: value for key, value in os.environ.items() if not key.startswith("WEBEX_")}
    env.update({
        "PATH": f"{BIN_DIR}{os.pathsep}{os.environ.get('PATH', '')}",
        "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS_DIR),
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
        "ANSIBLE_NOCOLOR": "1",
        "NO_COLOR": "1",
    })

    completed = subprocess.run([str(BIN_DIR / "molecule"), "test"], cwd=REPO_ROOT / "roles" / role,
                               env=env, capture_output=True, text=True, timeout=900,
                               check=False)

    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output[-5000:]
    for step in ("converge", "idempotence", "verify"):
        assert f"{step}: Executed: Successful" in output, output[-3000:]
