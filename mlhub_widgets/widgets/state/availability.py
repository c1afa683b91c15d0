"""Which datasets can be downloaded, and why the others cannot ("metadata only").

A dataset can be downloaded when the server has its STAC catalogue. Servers say so in two ways:

* the bundled hub (and any server following it) puts ``metadata_only_reason`` (a sentence) in
  the record of every dataset without a catalogue: the ``metadata_only_reason`` column of
  :func:`mlhub_widgets.datasets`. When any record of a listing carries it, the listing is
  taken as complete: the records without it can be downloaded;
* other MLHub servers answer ``GET /catalog/{id}/info`` with 404 for such a dataset, so the
  explorer asks once per dataset (a few at a time, in a worker thread) and remembers the answer
  for the session.

STAC sources (a static catalogue or a STAC API) need no catalogue archive: every dataset they
list can be downloaded.

The answers are plain strings: ``""`` for "downloadable", the reason for "metadata only".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from ...exceptions import EntityDoesNotExist, MLHubException
from .errors import metadata_only_reason

if TYPE_CHECKING:
    from ...config.session import Session

#: The record field (and the column of :func:`mlhub_widgets.datasets`) naming the reason.
FIELD = "metadata_only_reason"
#: Catalogue-info requests in flight at once while the results are checked.
PROBES_AT_ONCE = 4


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def from_results(frame: Any, *, stac_source: bool) -> tuple[dict[str, str], list[str]]:
    """What the results frame says: ``({id: "" or reason}, [ids still to ask the server])``."""
    if frame is None or len(frame) == 0:
        return {}, []
    ids = [str(i) for i in frame["id"]]
    if stac_source:
        return dict.fromkeys(ids, ""), []
    reasons = [_text(v) for v in frame[FIELD]] if FIELD in frame else [""] * len(ids)
    if any(reasons):
        return dict(zip(ids, reasons, strict=True)), []
    return {}, ids


def probe(dataset_id: str, session: Session) -> str | None:
    """Ask the server whether it has the dataset's catalogue: ``""`` yes, the reason if not,
    ``None`` when the answer says neither (no key, server error, no connection)."""
    from ...mlhub.client import get_catalog_info

    try:
        get_catalog_info(dataset_id, session=session)
    except EntityDoesNotExist:
        return metadata_only_reason(dataset_id)
    except MLHubException:
        return None
    return ""


def probe_all(ids: Iterable[str], session: Session) -> dict[str, str]:
    """:func:`probe` for each id, :data:`PROBES_AT_ONCE` at a time; unknown answers left out."""
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return {}
    with ThreadPoolExecutor(PROBES_AT_ONCE, thread_name_prefix="mlhub-availability") as pool:
        answers = list(pool.map(lambda i: probe(i, session), wanted))
    return {i: a for i, a in zip(wanted, answers, strict=True) if a is not None}


def from_record(record: Mapping[str, Any]) -> str | None:
    """The reason a dataset record gives, or None when it says nothing."""
    reason = _text(record.get(FIELD))
    return reason or None
