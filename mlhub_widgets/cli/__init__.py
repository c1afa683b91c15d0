"""The ``mlhub`` command line: :func:`main` (see :mod:`.main`), one module per command group."""

from __future__ import annotations

from .main import build_parser, main

__all__ = ["build_parser", "main"]
