"""The explorer state's task machinery: background work by area, busy labels and errors."""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

from traitlets import Dict, HasTraits, Unicode

from ...exceptions import MLHubException
from .errors import friendly_error

log = logging.getLogger(__name__)

T = TypeVar("T")


class BackgroundTasks(HasTraits):
    """Work in worker threads, one *area* at a time, with its busy label and its error.

    The base of :class:`~.explorer_state.ExplorerState` (see its module docstring for the rules).
    """

    # -- work in progress and errors ----------------------------------------------------------
    busy = Dict(help="area -> what is being done, for every area with work in progress")
    errors = Dict(help="area -> message for the user about the last failure in that area")
    notices = Dict(help="area -> informational message (e.g. 'profile saved')")
    warnings = Dict(help="area -> a warning that is not a failure (e.g. 'download cancelled')")
    last_traceback = Unicode("", help="traceback of the last unexpected error (for bug reports)")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._lock = threading.RLock()
        self._idle = threading.Condition(self._lock)
        self._generation: dict[str, int] = {}
        self._threads: set[threading.Thread] = set()

    def _set_area(self, trait: str, area: str, value: str | None) -> None:
        with self._lock:
            current = dict(getattr(self, trait))
            if value is None:
                if area not in current:
                    return
                current.pop(area)
            else:
                if current.get(area) == value:
                    return
                current[area] = value
            setattr(self, trait, current)

    def set_error(self, area: str, message: str | None) -> None:
        """Show (or with None clear) a message for the user in ``area``."""
        self._set_area("errors", area, message)

    def set_notice(self, area: str, message: str | None) -> None:
        """Show (or with None clear) an informational message in ``area``."""
        self._set_area("notices", area, message)

    def set_warning(self, area: str, message: str | None) -> None:
        """Show (or with None clear) a warning in ``area``."""
        self._set_area("warnings", area, message)

    def run_in_background(
        self,
        area: str,
        label: str,
        work: Callable[[], T],
        done: Callable[[T], None] | None = None,
        failed: Callable[[BaseException], None] | None = None,
    ) -> threading.Thread:
        """Run ``work()`` in a daemon thread; then ``done(result)`` in that thread.

        ``busy[area]`` is ``label`` meanwhile; an exception becomes ``errors[area]`` and is
        handed to ``failed(exc)`` (which puts the state back as it was before the work). Work
        started later in the same area supersedes this one (its result and errors are dropped).
        """
        with self._lock:
            gen = self._generation.get(area, 0) + 1
            self._generation[area] = gen
        self._set_area("busy", area, label)
        self.set_error(area, None)
        self.set_notice(area, None)
        self.set_warning(area, None)

        def current() -> bool:
            with self._lock:
                return self._generation.get(area) == gen

        def runner() -> None:
            try:
                result = work()
                # Under the lock: newer work in this area cannot start (and later finish) while
                # this result is applied, so a superseded result never overwrites a newer one.
                with self._lock:
                    if current() and done is not None:
                        done(result)
            except Exception as exc:
                if current():
                    if not isinstance(exc, MLHubException | ValueError | TypeError | OSError):
                        self.last_traceback = traceback.format_exc()
                        log.debug("explorer %s failed", area, exc_info=True)
                    self.set_error(area, friendly_error(exc))
                    if failed is not None:
                        with self._lock:
                            if current():
                                failed(exc)
            finally:
                with self._lock:
                    self._threads.discard(threading.current_thread())
                    if current():
                        self._set_area("busy", area, None)
                    self._idle.notify_all()

        thread = threading.Thread(target=runner, name=f"mlhub-explorer-{area}", daemon=True)
        with self._lock:
            self._threads.add(thread)
        thread.start()
        return thread

    def wait(self, timeout: float | None = 60.0) -> bool:
        """Block until no background work (other than a download job) runs. For scripts/tests.

        Returns False on timeout. Do not call it from a widget callback: it blocks the kernel.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._idle:
            while self._threads:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def is_busy(self, *areas: str) -> bool:
        """True when any of ``areas`` (default: any area) has work in progress."""
        busy = self.busy
        return bool(busy) if not areas else any(a in busy for a in areas)
