"""The explorer's shared state (its view-model): traitlets only, no widgets in it.

See :mod:`.explorer_state` (:class:`ExplorerState`). Its parts: :mod:`.filters` (what to
download), :mod:`.tasks` (background work by area), :mod:`.job_follow` (the download job's
progress and end messages), :mod:`.availability` (which datasets can be downloaded),
:mod:`.errors` (messages for the user), :mod:`.details` (what the dataset view shows),
:mod:`.formatting` (sizes and durations as text), :mod:`.map_items` with :mod:`.footprints`
and :mod:`.preview` (the items on the map, which of them the filters select, an item's preview),
:mod:`.places` (offline place search), :mod:`.downloads` (the download options, the
estimate, starting and retrying a job), :mod:`.on_disk` (what a download left on disk).
"""

from __future__ import annotations

from .downloads import default_output_dir
from .errors import FailedAsset, friendly_error
from .explorer_state import AREAS, ExplorerState
from .filters import Filters
from .job_follow import completed_fraction

__all__ = [
    "AREAS",
    "ExplorerState",
    "FailedAsset",
    "Filters",
    "completed_fraction",
    "default_output_dir",
    "friendly_error",
]
