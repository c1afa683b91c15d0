"""Numbers as the explorer writes them (no widgets here: the state's messages use them too)."""

from __future__ import annotations

import math

from ...units import human_bytes

__all__ = ["human_bytes", "human_duration"]


def human_duration(seconds: float | None) -> str:
    """``75`` → ``"1:15"``; ``None`` → ``"–"``."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "–"
    s = round(seconds)
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"
