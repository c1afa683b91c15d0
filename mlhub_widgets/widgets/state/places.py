"""Place search that works offline: country names from the bundled Natural Earth outlines, and
coordinates typed as ``lat, lon`` or as a bbox ``west, south, east, north``.

No geocoding service is asked: the explorer must work on machines with no internet, and a
country or a typed coordinate is what choosing an area of interest needs most.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

__all__ = ["OUTLINES", "Place", "country_names", "country_outlines", "find_place"]

#: Natural Earth 1:110m countries (public domain; see ``widgets/data/README.md``).
OUTLINES = Path(__file__).resolve().parents[1] / "data" / "naturalearth_countries.geojson"

_NUMBER = r"[-+]?\d+(?:\.\d*)?"
_NUMBERS = re.compile(rf"^\s*({_NUMBER})\s*[,;\s]\s*({_NUMBER})\s*$")
_FOUR = re.compile(rf"^\s*({_NUMBER})(?:\s*[,;\s]\s*({_NUMBER})){{3}}\s*$")


@dataclass(frozen=True)
class Place:
    """A place found by :func:`find_place`.

    Attributes:
        name: what was found (a country's name, or the coordinates as typed).
        bounds: ``(west, south, east, north)`` to show on the map.
        geometry: the place's GeoJSON geometry (a country's outline, a point, a box).
    """

    name: str
    bounds: tuple[float, float, float, float]
    geometry: dict[str, Any]


@cache
def country_outlines() -> dict[str, Any]:
    """The bundled Natural Earth 1:110m country outlines as a GeoJSON FeatureCollection."""
    data: dict[str, Any] = json.loads(OUTLINES.read_text(encoding="utf-8"))
    return data


@cache
def country_names() -> tuple[str, ...]:
    """The names of the bundled countries, sorted."""
    return tuple(sorted(f["properties"]["name"] for f in country_outlines()["features"]))


def _bounds(geometry: dict[str, Any]) -> tuple[float, float, float, float]:
    from shapely.geometry import shape

    w, s, e, n = shape(geometry).bounds
    return (float(w), float(s), float(e), float(n))


def find_place(text: str) -> Place:
    """The place ``text`` names: ``lat, lon``; ``west, south, east, north``; or a country
    (its name or ISO 3166 alpha-3 code, any case; a unique start of a name is enough).

    Raises:
        ValueError: nothing matches, or several countries do (the message names them).
    """
    query = text.strip()
    if not query:
        raise ValueError("Type a country, 'lat, lon' or 'west, south, east, north'.")
    four = _FOUR.match(query)
    if four:
        from ...filters import validate_bbox

        values = [float(v) for v in re.findall(_NUMBER, query)]
        box = validate_bbox(values)
        w, s, e, n = (float(v) for v in box)
        ring = [[w, s], [e, s], [e, n], [w, n], [w, s]]
        return Place(query, (w, s, e, n), {"type": "Polygon", "coordinates": [ring]})
    two = _NUMBERS.match(query)
    if two:
        lat, lon = float(two.group(1)), float(two.group(2))
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise ValueError(
                f"{query!r} is not 'lat, lon': latitude must be within ±90 and longitude ±180."
            )
        pad = 0.05
        return Place(
            f"{lat:g}, {lon:g}",
            (lon - pad, lat - pad, lon + pad, lat + pad),
            {"type": "Point", "coordinates": [lon, lat]},
        )
    wanted = query.casefold()
    features = country_outlines()["features"]
    exact = [
        f
        for f in features
        if wanted in (f["properties"]["name"].casefold(), str(f["properties"]["iso_a3"]).casefold())
    ]
    found = exact or [f for f in features if f["properties"]["name"].casefold().startswith(wanted)]
    if not found:
        found = [f for f in features if wanted in f["properties"]["name"].casefold()]
    if not found:
        raise ValueError(
            f"No country called {query!r} (offline search: country names, 'lat, lon', or "
            "'west, south, east, north')."
        )
    if len(found) > 1:
        names = sorted(f["properties"]["name"] for f in found)
        shown = ", ".join(names[:8]) + ("…" if len(names) > 8 else "")
        raise ValueError(f"{len(names)} countries match {query!r}: {shown}.")
    feature = found[0]
    geometry = feature["geometry"]
    return Place(feature["properties"]["name"], _bounds(geometry), geometry)
