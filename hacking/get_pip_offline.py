"""Stand-in for the get-pip bootstrap script that ansible-test downloads.

``ansible-test --requirements`` bootstraps pip in each virtual environment it creates by
running a cached ``get-pip`` script, and downloads that script from a host outside the
package registries when no cached copy exists. ``make sanity`` copies this file to
``~/.ansible/test/cache/get_pip_<version>.py`` instead. It installs the pip that the
Python standard library bundles (``ensurepip``) and then runs ``pip install`` with the
arguments that ansible-test passes, so the pinned pip version comes from the package index.
"""

from __future__ import annotations

import subprocess
import sys

# get-pip options that pip itself does not know: they name packages to leave out.
GET_PIP_ONLY_OPTIONS = {"--no-setuptools": "setuptools", "--no-wheel": "wheel"}


def main() -> int:
    """Bootstrap pip with ensurepip, then install the requested packages with it."""
    arguments = sys.argv[1:]
    pip_arguments = [arg for arg in arguments if arg not in GET_PIP_ONLY_OPTIONS]
    excluded = [GET_PIP_ONLY_OPTIONS[arg] for arg in arguments if arg in GET_PIP_ONLY_OPTIONS]

    subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"])
    subprocess.check_call([sys.executable, "-m", "pip", "install", *pip_arguments])

    # ensurepip of Python 3.11 and older also installs setuptools; get-pip leaves it out
    # when asked, so the environment matches what ansible-test expects.
    if excluded:
        subprocess.call([sys.executable, "-m", "pip", "uninstall", "--yes", "--quiet",
                         *excluded])
    return 0


if __name__ == "__main__":
    sys.exit(main())
