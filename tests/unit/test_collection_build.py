"""Test which files `ansible-galaxy collection build` packs from a clone with user files."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN_DIR = Path(sys.executable).parent

# Files a user's runs leave in a clone: an inventory with its WAL files and upgrade copy,
# and a license report. They contain names and email addresses of people.
USER_FILES = (
    "inventory.db",
    "inventory.db-wal",
    "inventory.db-shm",
    "inventory.db.schema-3.bak",
    "reports/licenses.csv",
    "reports/licenses.json",
    "reports/licenses.txt",
    "webex-license-report/licenses.json",
    "webex-license-report/totals.csv",
    "playbooks/inventory/customers.db",
)


def test_build_skips_inventories_and_reports(tmp_path):
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO_ROOT, check=True, capture_output=True
    ).stdout.decode().split("\0")
    clone = tmp_path / "clone"
    for relative in filter(None, tracked):
        target = clone / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / relative, target)
    for relative in USER_FILES:
        (clone / relative).parent.mkdir(parents=True, exist_ok=True)
        (clone / relative).write_text("ada@example.com\n")

    subprocess.run(
        [str(BIN_DIR / "ansible-galaxy"), "collection", "build", "--output-path",
         str(tmp_path / "dist"), str(clone)],
        check=True, capture_output=True,
    )

    [tarball] = (tmp_path / "dist").glob("ucops-webex-*.tar.gz")
    with tarfile.open(tarball) as archive:
        names = set(archive.getnames())
    assert "plugins/modules/webex_license_sync.py" in names
    assert sorted(set(USER_FILES) & names) == []
