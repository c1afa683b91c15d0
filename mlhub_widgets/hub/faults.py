"""Fault injection for the bundled hub: errors, dropped and short bodies, latency, bandwidth.

All faults are off by default. Random faults are *deterministic*: whether the n-th request for a
given path is faulty depends only on ``seed``, the path and n, never on timing or on the order in
which concurrent connections arrive. A retried request is a new draw, so retries eventually pass.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

from .synth import path_hash

__all__ = ["FaultConfig", "FaultDecision", "FaultState", "Scope"]

Scope = Literal["assets", "storage", "api", "all"]


def _paths(values: Iterable[str]) -> frozenset[str]:
    out = set()
    for value in values:
        path = urlsplit(value).path if "://" in value else value
        out.add("/" + path.lstrip("/"))
    return frozenset(out)


@dataclass(frozen=True)
class FaultConfig:
    """What the hub does wrong, and to which requests.

    Attributes:
        error_rate: fraction of matching requests answered with a status from ``error_statuses``.
        error_statuses: statuses drawn for injected errors.
        retry_after: seconds sent in ``Retry-After`` with 429 and 503 (may be fractional).
        drop_rate: fraction of matching responses cut after half the body, then reset (RST).
        short_body_rate: fraction of matching responses that announce ``Content-Length`` N but
            send only ~90 % of the body and close the connection cleanly (FIN).
        latency_ms: delay added before every response (all requests, whatever ``scope``).
        connect_latency_ms: extra delay on the first request of each new connection (a stand-in
            for TCP + TLS handshakes; all requests, whatever ``scope``).
        bandwidth_bps: cap in bytes per second for each response body (matching requests).
        missing: asset URL paths (or full URLs) answered 404, permanently; on the S3 origin,
            ``/bucket/key`` paths (``NoSuchKey``).
        forbidden: asset URL paths (or full URLs) answered 403, permanently; on the S3 origin,
            ``/bucket/key`` paths or a whole ``/bucket`` (``AccessDenied``).
        no_ranges: the storage origin ignores ``Range`` everywhere (200 with the full body and no
            ``Accept-Ranges``), like servers without range support.
        no_range_paths: the same, only for these paths (or full URLs).
        scope: which requests the random faults and the bandwidth cap apply to: ``"assets"``
            (asset files on the storage origin, object reads and writes on the S3 origin),
            ``"storage"`` (everything on the storage and S3 origins, including catalogue and
            archive tarballs and listings), ``"api"`` (the API origin) or ``"all"``.
        seed: makes the random draws reproducible.
    """

    error_rate: float = 0.0
    error_statuses: tuple[int, ...] = (500, 503, 429)
    retry_after: float = 1.0
    drop_rate: float = 0.0
    short_body_rate: float = 0.0
    latency_ms: float = 0.0
    connect_latency_ms: float = 0.0
    bandwidth_bps: int | None = None
    missing: frozenset[str] = field(default_factory=frozenset)
    forbidden: frozenset[str] = field(default_factory=frozenset)
    no_ranges: bool = False
    no_range_paths: frozenset[str] = field(default_factory=frozenset)
    scope: Scope = "assets"
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("missing", "forbidden", "no_range_paths"):
            object.__setattr__(self, name, _paths(getattr(self, name)))
        object.__setattr__(self, "error_statuses", tuple(self.error_statuses))
        for name in ("error_rate", "drop_rate", "short_body_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {value}")
        if self.error_rate and not self.error_statuses:
            raise ValueError("error_rate needs at least one status in error_statuses")
        if self.scope not in ("assets", "storage", "api", "all"):
            raise ValueError(f"unknown scope {self.scope!r}")
        if self.bandwidth_bps is not None and self.bandwidth_bps <= 0:
            raise ValueError("bandwidth_bps must be positive")

    @property
    def active(self) -> bool:
        """Whether any fault at all is configured."""
        return self != _OFF

    def applies(self, origin: str, kind: str) -> bool:
        """Whether the random faults and the bandwidth cap apply to this request."""
        if self.scope == "all":
            return True
        if self.scope == "api":
            return origin == "api"
        if self.scope == "storage":
            return origin in ("storage", "s3")
        return (origin == "storage" and kind == "asset") or (origin == "s3" and kind == "s3-object")


_OFF = FaultConfig()


@dataclass(frozen=True, slots=True)
class FaultDecision:
    """What to do to one response (``status`` replaces the real answer when set)."""

    status: int | None = None
    retry_after: float | None = None
    cut: Literal["drop", "short"] | None = None
    delay: float = 0.0
    bandwidth: int | None = None


NO_FAULT = FaultDecision()


class FaultState:
    """Per-path attempt counters behind the deterministic draws (thread-safe)."""

    def __init__(self) -> None:
        self._attempts: dict[str, int] = {}
        self._lock = threading.Lock()

    def reset(self) -> None:
        """Forget all attempts (done whenever a new :class:`FaultConfig` is set)."""
        with self._lock:
            self._attempts.clear()

    def decide(
        self, cfg: FaultConfig, origin: str, kind: str, method: str, path: str, first: bool
    ) -> FaultDecision:
        """Draw the faults of one request (``first``: first request of its connection)."""
        delay = cfg.latency_ms / 1000.0
        if first:
            delay += cfg.connect_latency_ms / 1000.0
        if origin == "storage":
            if path in cfg.missing:
                return FaultDecision(status=404, delay=delay)
            if path in cfg.forbidden:
                return FaultDecision(status=403, delay=delay)
        if not cfg.applies(origin, kind):
            return FaultDecision(delay=delay) if delay else NO_FAULT
        with self._lock:
            n = self._attempts.get(path, 0)
            self._attempts[path] = n + 1
        if cfg.error_rate and _draw(cfg.seed, "error", path, n) < cfg.error_rate:
            status = cfg.error_statuses[
                path_hash(cfg.seed, "status", path, n) % len(cfg.error_statuses)
            ]
            retry = cfg.retry_after if status in (429, 503) else None
            return FaultDecision(status=status, retry_after=retry, delay=delay)
        cut: Literal["drop", "short"] | None = None
        if method == "GET":
            if cfg.drop_rate and _draw(cfg.seed, "drop", path, n) < cfg.drop_rate:
                cut = "drop"
            elif cfg.short_body_rate and _draw(cfg.seed, "short", path, n) < cfg.short_body_rate:
                cut = "short"
        if not (cut or delay or cfg.bandwidth_bps):
            return NO_FAULT
        return FaultDecision(cut=cut, delay=delay, bandwidth=cfg.bandwidth_bps)


def _draw(seed: int, what: str, path: str, n: int) -> float:
    return path_hash(seed, what, path, n) / float(1 << 64)
