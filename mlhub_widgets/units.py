"""Numbers as people read them, shared by every layer (messages, progress, CLI, explorer)."""

from __future__ import annotations

import math

__all__ = ["human_bytes"]


def human_bytes(n: float | None) -> str:
    """A byte count in decimal units, as download managers and file browsers show it.

    ``999`` → ``"999 B"``, ``263582`` → ``"263.6 kB"``, ``169265765`` → ``"169.3 MB"``;
    ``None`` or NaN (a size nobody gave) → ``"unknown"``.
    """
    if n is None or math.isnan(n):
        return "unknown"
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if abs(value) < 1000:
            return f"{value:.0f} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"
