"""What the MLHub objects share: the session they were obtained with, date parsing, and (for the
pystac ones, :class:`Collection` and :class:`MLModel`) ``from_dict``/``fetch``/``list``."""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Any, Self

import pystac
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


class ApiStacObject(SessionBound):
    """A pystac object served by the API, bound to the session it came with.

    The subclass (first base, before its pystac class) names its endpoints in
    :meth:`_get_json` and :meth:`_list_json` and gives ``fetch`` its own argument name.
    """

    @classmethod
    def _get_json(cls, object_id: str, session: Session) -> JSON:
        raise NotImplementedError

    @classmethod
    def _list_json(cls, session: Session) -> builtins.list[JSON]:
        raise NotImplementedError

    @classmethod
    def from_dict(
        cls,
        d: dict[str, Any],
        href: str | None = None,
        root: pystac.Catalog | None = None,
        migrate: bool = False,
        preserve_dict: bool = True,
        *,
        api_key: str | None = None,
        profile: str | None = None,
        root_url: str | None = None,
        session: Session | None = None,
    ) -> Self:
        """Build the object from its JSON; it keeps the given session settings."""
        obj = super().from_dict(  # type: ignore[misc]
            d, href=href, root=root, migrate=migrate, preserve_dict=preserve_dict
        )
        assert isinstance(obj, cls)
        obj._bind(session, api_key, profile, root_url)
        return obj

    @classmethod
    def _fetch(
        cls,
        object_id: str,
        api_key: str | None,
        profile: str | None,
        root_url: str | None,
        session: Session | None,
    ) -> Self:
        s = client.resolve_session(session, api_key=api_key, profile=profile, root_url=root_url)
        return cls.from_dict(cls._get_json(object_id, s), session=s)

    @classmethod
    def list(
        cls,
        *,
        api_key: str | None = None,
        profile: str | None = None,
        root_url: str | None = None,
        session: Session | None = None,
    ) -> builtins.list[Self]:
        """Every object of this kind the API has (all share one session)."""
        s = client.resolve_session(session, api_key=api_key, profile=profile, root_url=root_url)
        return [cls.from_dict(d, session=s) for d in cls._list_json(s)]
