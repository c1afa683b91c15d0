"""Where the tests find recorded MLHub API responses and the real catalogues.

The recordings live in the workplace's shared folder beside the repository
(``../shared/fixtures/mlhub-api``; ``MLHUB_FIXTURES`` overrides). The two real catalogue
tarballs are also bundled, byte-identical, in the hub's sample data, so tests that only need
those never depend on the shared folder.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RECORDINGS = Path(os.environ.get("MLHUB_FIXTURES") or REPO.parent / "shared/fixtures/mlhub-api")
BUNDLED_DATASETS = REPO / "mlhub_widgets/hub/data/datasets"
NASA_CATALOG = BUNDLED_DATASETS / "nasa_marine_debris/catalog.tar.gz"
SU_SAR_CATALOG = BUNDLED_DATASETS / "su_sar_moisture_content_main/catalog.tar.gz"
