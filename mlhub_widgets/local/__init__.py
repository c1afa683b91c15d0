"""Downloaded datasets, ready for training: ``mw.open_local(folder)`` → :class:`LocalDataset`.

See :mod:`.dataset` (the catalogue, assets and label/source pairs), :mod:`.cube` (lazy cubes
through odc-stac) and :mod:`.storage` (where files are read from).
"""

from __future__ import annotations

from .dataset import ASSET_COLUMNS, PAIR_COLUMNS, LocalDataset, open_local

__all__ = ["ASSET_COLUMNS", "PAIR_COLUMNS", "LocalDataset", "open_local"]
