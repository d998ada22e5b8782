"""Put the offline get-pip stand-in where ansible-test looks for a cached bootstrap script.

ansible-test reads ``~/.ansible/test/cache/get_pip_<pip version>.py``, where the pip version
is the one its own code pins for the virtual environments it creates. This script reads that
version from the installed ansible-test, and copies ``get_pip_offline.py`` there unless a
cached script already exists. It prints the path it uses.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import ansible_test

STAND_IN = Path(__file__).resolve().parent / "get_pip_offline.py"
CACHE_DIR = Path.home() / ".ansible" / "test" / "cache"
PIP_PIN = re.compile(r"\bpip='(\d+(?:\.\d+)+)'")


def find_pip_version() -> str:
    """Return the pip version that the installed ansible-test bootstraps."""
    source = Path(ansible_test.__file__).parent / "_internal" / "python_requirements.py"
    match = PIP_PIN.search(source.read_text(encoding="utf-8"))
    if match is None:
        raise SystemExit(f"pip version pin not found in {source}; update {Path(__file__).name}")
    return match.group(1)


def main() -> int:
    """Copy the stand-in into the ansible-test cache if no cached script exists."""
    version = find_pip_version()
    target = CACHE_DIR / f"get_pip_{version.replace('.', '_')}.py"
    if not target.exists():
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(STAND_IN, target)
    sys.stdout.write(f"ansible-test pip {version} bootstrap script: {target}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
