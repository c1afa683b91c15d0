"""Jupyter widgets of mlhub_widgets: the explorer and its panels.

Each panel works on its own (``LoginPanel()``, ``MapFilterPanel()``, ...) or shares one
:class:`~mlhub_widgets.state.ExplorerState` with the others, as :func:`explorer` does::

    import mlhub_widgets
    ex = mlhub_widgets.explorer(demo=True)   # the bundled demo hub, offline
    ex                                        # display it
    ex.filters, ex.dataset, ex.job            # the same state, from code
"""

from __future__ import annotations

from ..state import ExplorerState, Filters
from .content_filter import ContentFilterPanel
from .date_range import DateRangePanel
from .download_panel import DownloadPanel
from .explorer import Explorer, explorer
from .login import LoginPanel
from .map_filter import MapFilterPanel
from .search import SearchPanel

__all__ = [
    "ContentFilterPanel",
    "DateRangePanel",
    "DownloadPanel",
    "Explorer",
    "ExplorerState",
    "Filters",
    "LoginPanel",
    "MapFilterPanel",
    "SearchPanel",
    "explorer",
]
