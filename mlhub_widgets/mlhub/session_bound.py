"""What the MLHub objects share: the session they were obtained with, and date parsing."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dateutil.parser import isoparse

from ..config.session import Session, get_session
from . import client

JSON = dict[str, Any]


def parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return isoparse(value)
    except (ValueError, OverflowError):
        return None


class SessionBound:
    """Keeps the session an object was obtained with, and derives overrides from it."""

    _mlhub_session: Session | None
    _mlhub_session_kwargs: dict[str, str | None]

    def _bind(
        self,
        session: Session | None,
        api_key: str | None,
        profile: str | None,
        root_url: str | None,
    ) -> None:
        self._mlhub_session = session
        self._mlhub_session_kwargs = {"api_key": api_key, "profile": profile, "root_url": root_url}

    @property
    def session(self) -> Session:
        """The session this object uses for every request (created on first use)."""
        s = getattr(self, "_mlhub_session", None)
        if s is None:
            kwargs = getattr(self, "_mlhub_session_kwargs", None) or {}
            s = self._mlhub_session = get_session(**kwargs)
        return s

    @property
    def session_kwargs(self) -> dict[str, str | None]:
        """The ``api_key``/``profile``/``root_url`` this object was created with."""
        return dict(getattr(self, "_mlhub_session_kwargs", None) or {})

    def _session_for(
        self,
        api_key: str | None = None,
        profile: str | None = None,
        root_url: str | None = None,
        session: Session | None = None,
    ) -> Session:
        """This object's session, or one built from explicit per-call overrides.

        An override keeps this object's API root unless ``root_url`` is given too.
        """
        if session is not None:
            return client.resolve_session(session)
        if api_key is None and profile is None and root_url is None:
            return self.session
        return get_session(
            api_key=api_key, profile=profile, root_url=root_url or self.session.root_url
        )


# --------------------------------------------------------------------------------------------
