"""The error every hub route raises to answer with a status and a one-line message."""

from __future__ import annotations

__all__ = ["HTTPError"]


class HTTPError(Exception):
    """Raised by route code to answer ``status`` with ``detail``.

    The API origin answers 400s in the STAC API exception shape ``{"code": "BadRequest",
    "description": detail}`` and every other status as the recorded API did, ``{"detail":
    detail}``.
    """

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
