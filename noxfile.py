"""The test suite on every supported Python, on demand (``make test`` uses one interpreter).

    .venv/bin/nox                          # the full suite on 3.11, 3.12 and 3.13
    .venv/bin/nox -s tests-3.13            # one interpreter
    .venv/bin/nox -s tests-3.13 -- -n auto -m "not browser and not slow"   # pytest arguments
    .venv/bin/nox -s training              # docs/training.md with torch and torchgeo (~6 GB)

Each session makes its own virtualenv under ``.nox/`` with ``pip install -e '.[test]'``; the
Debian packages and Azurite come from the Makefile, as for ``make test``. Interpreters are
``python3.11``, ``python3.12`` and ``python3.13`` on PATH; pyenv's shims answer for every
installed version. A missing interpreter is an error, not a skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True

PYTHONS = ["3.11", "3.12", "3.13"]


def _activate_pyenv_versions() -> None:
    """pyenv's ``python3.X`` shims answer only for active versions: activate the newest
    installed patch release of each of :data:`PYTHONS` (unless PYENV_VERSION is set)."""
    pyenv = shutil.which("pyenv")
    if pyenv is None or "PYENV_VERSION" in os.environ:
        return
    bare = subprocess.run([pyenv, "versions", "--bare"], capture_output=True, text=True)
    installed = bare.stdout.split()
    wanted = []
    for minor in PYTHONS:
        patches = [
            v for v in installed if v.startswith(minor + ".") and v[len(minor) + 1 :].isdigit()
        ]
        if patches:
            wanted.append(max(patches, key=lambda v: int(v.rsplit(".", 1)[1])))
    if wanted:
        os.environ["PYENV_VERSION"] = ":".join(wanted)


_activate_pyenv_versions()


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """pytest (all of it, or the arguments after ``--``) on one Python."""
    session.run("make", "debian-test", "tests/parts/node_modules/.bin/azurite-blob", external=True)
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", *session.posargs)


#: torch and torchvision for torchgeo: the releases pip takes from this machine's disk for Python
#: 3.11 (a CUDA build that runs on the CPU; PyPI's torchvision does not import beside the CPU-only
#: torch 2.13.0 file). About 5.5 GB in the session's virtualenv.
TORCH = ["torch==2.14.1", "torchvision==0.29.1"]


@nox.session(python="3.11")
def training(session: nox.Session) -> None:
    """The training recipe (docs/training.md: PyTorch and torchgeo), tests marked ``torch``."""
    session.install(*TORCH)
    session.install("-e", ".[training]", "pytest>=8", "pytest-timeout>=2.2")
    # the torch tests only (the others need the [test] extra, which this session does not install)
    targets = session.posargs or ["tests/test_training.py"]
    session.run("python", "-m", "pytest", "--torch", "-m", "torch", "-rA", *targets)
