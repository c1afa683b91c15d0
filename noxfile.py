"""The test suite on every supported Python, on demand (``make test`` uses one interpreter).

    .venv/bin/nox                          # the full suite on 3.11, 3.12 and 3.13
    .venv/bin/nox -s tests-3.13            # one interpreter
    .venv/bin/nox -s tests-3.13 -- -n auto -m "not browser and not slow"   # pytest arguments

Each session makes its own virtualenv under ``.nox/`` with ``pip install -e '.[test]'``; the
Debian packages and Azurite come from the Makefile, as for ``make test``. Interpreters are
found on PATH as ``python3.11``, ``python3.12``, ``python3.13`` (pyenv shims work).
"""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True

PYTHONS = ["3.11", "3.12", "3.13"]


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """pytest (all of it, or the arguments after ``--``) on one Python."""
    session.run("make", "debian-test", "tests/parts/node_modules/.bin/azurite-blob", external=True)
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", *session.posargs)
