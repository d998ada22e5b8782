"""The collection in an execution environment: ansible-builder metadata and build context.

No image is built (there is no container engine here): `ansible-builder create` writes the
build context, and `ansible-builder introspect` reads the collection's dependencies the way
the image build does.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN_DIR = Path(sys.executable).parent
COLLECTIONS_DIR = REPO_ROOT / ".build" / "collections"

# The execution environment definition that the README shows for AWX, with the collection
# installed from a tarball that `ansible-galaxy collection build` wrote. The image build
# copies the context's _build directory to /build before it installs collections.
EE_DEFINITION = """\
version: 3
images:
  base_image:
    name: registry.example.com/ee/base-python311:latest
dependencies:
  python_interpreter:
    package_system: python3.11
    python_path: /usr/bin/python3.11
  ansible_core:
    package_pip: ansible-core==2.19.14
  ansible_runner:
    package_pip: ansible-runner==2.4.3
  galaxy:
    collections:
      - name: /build/collections/{tarball}
        type: file
additional_build_files:
  - src: {tarball}
    dest: collections
"""


def run(*command: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=300,
                          check=False)


@pytest.fixture(scope="module")
def build_context(tmp_path_factory) -> Path:
    """Build the collection tarball and run `ansible-builder create` on the definition."""
    work = tmp_path_factory.mktemp("ee")
    built = run(str(BIN_DIR / "ansible-galaxy"), "collection", "build", "--output-path",
                str(work), str(REPO_ROOT), cwd=work)
    assert built.returncode == 0, built.stdout + built.stderr
    tarball = next(work.glob("ucops-webex-*.tar.gz")).name

    (work / "execution-environment.yml").write_text(EE_DEFINITION.format(tarball=tarball))
    created = run(str(BIN_DIR / "ansible-builder"), "create", "--file",
                  "execution-environment.yml", "--context", "context",
                  "--output-filename", "Containerfile", cwd=work)
    assert created.returncode == 0, created.stdout + created.stderr
    return work / "context"


def test_create_writes_containerfile(build_context):
    containerfile = (build_context / "Containerfile").read_text()

    assert 'ARG EE_BASE_IMAGE="registry.example.com/ee/base-python311:latest"' in containerfile
    assert "COPY _build /build" in containerfile
    assert "ansible-galaxy collection install" in containerfile


def test_create_copies_collection_tarball(build_context):
    requirements = yaml.safe_load((build_context / "_build" / "requirements.yml").read_text())
    tarballs = list((build_context / "_build" / "collections").glob("ucops-webex-*.tar.gz"))

    assert len(tarballs) == 1
    assert requirements["collections"] == [
        {"name": f"/build/collections/{tarballs[0].name}", "type": "file"}
    ]


def test_introspect_reads_collection_requirements():
    assert (COLLECTIONS_DIR / "ansible_collections" / "ucops" / "webex").exists(), \
        "run `make collection` first"

    result = run(str(BIN_DIR / "ansible-builder"), "introspect", str(COLLECTIONS_DIR),
                 cwd=REPO_ROOT)
    data = yaml.safe_load(result.stdout.split("\n", 1)[1])

    assert result.returncode == 0, result.stderr
    assert "requests>=2.25  # from collection ucops.webex" in data["python"]
    assert data["system"] == []
