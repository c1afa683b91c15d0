"""The explorer's shared state (its view-model): traitlets only, no widgets in it.

See :mod:`.explorer_state` (:class:`ExplorerState`). Its parts: :mod:`.filters` (what to
download), :mod:`.tasks` (background work by area), :mod:`.errors` (messages for the user),
:mod:`.details` (what the dataset view shows).
"""

from __future__ import annotations

from .errors import FailedAsset, friendly_error
from .explorer_state import AREAS, ExplorerState, default_output_dir
from .filters import Filters

__all__ = [
    "AREAS",
    "ExplorerState",
    "FailedAsset",
    "Filters",
    "default_output_dir",
    "friendly_error",
]
