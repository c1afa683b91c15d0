"""Jupyter widgets of mlhub_widgets: the explorer and its panels.

Each panel works on its own (``LoginPanel()``, ``MapFilterPanel()``, ...) or shares one
:class:`~mlhub_widgets.widgets.state.ExplorerState` with the others, as :func:`explorer` does::

    import mlhub_widgets
    ex = mlhub_widgets.explorer(demo=True)   # the bundled demo hub, offline
    ex                                        # display it
    ex.filters, ex.dataset, ex.job            # the same state, from code

The panels load on first use: the explorer's state (:mod:`.state`) works without ipywidgets,
which is an optional extra, and importing it must not load them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .content_filter import ContentFilterPanel
    from .date_range import DateRangePanel
    from .download_panel import DownloadPanel
    from .explorer_app import Explorer, explorer
    from .item_pane import ItemsPane
    from .login import LoginPanel
    from .map_filter import MapFilterPanel
    from .on_disk import OnDiskPanel
    from .search import SearchPanel
    from .state import ExplorerState, Filters

__all__ = [
    "ContentFilterPanel",
    "DateRangePanel",
    "DownloadPanel",
    "Explorer",
    "ExplorerState",
    "Filters",
    "ItemsPane",
    "LoginPanel",
    "MapFilterPanel",
    "OnDiskPanel",
    "SearchPanel",
    "explorer",
]

# name -> the module (relative) that defines it
_LAZY_EXPORTS = {
    "ContentFilterPanel": ".content_filter",
    "DateRangePanel": ".date_range",
    "DownloadPanel": ".download_panel",
    "Explorer": ".explorer_app",
    "ExplorerState": ".state",
    "Filters": ".state",
    "ItemsPane": ".item_pane",
    "LoginPanel": ".login",
    "MapFilterPanel": ".map_filter",
    "OnDiskPanel": ".on_disk",
    "SearchPanel": ".search",
    "explorer": ".explorer_app",
}


def __getattr__(name: str) -> Any:
    module = _LAZY_EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module, __name__), name)


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY_EXPORTS})
