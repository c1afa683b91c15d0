"""The explorer's shared state (its view-model): traitlets only, no widgets in it.

See :mod:`.explorer_state`.
"""

from __future__ import annotations

from .explorer_state import (
    AREAS,
    ExplorerState,
    FailedAsset,
    Filters,
    default_output_dir,
    friendly_error,
)

__all__ = [
    "AREAS",
    "ExplorerState",
    "FailedAsset",
    "Filters",
    "default_output_dir",
    "friendly_error",
]
