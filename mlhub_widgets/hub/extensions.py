"""The Item Search extensions of the hub: Fields, Sort and Query (STAC API 1.0.0).

* **Fields** (``fields``): GET ``fields=id,-geometry,+properties.datetime`` (``-`` excludes, no
  prefix or ``+`` includes); POST ``{"include": [...], "exclude": [...]}``. Semantics follow the
  extension's table: nothing given (GET ``fields=``, POST ``{}``/``null``/empty lists) returns
  the default set (``type``, ``stac_version``, ``id``, ``geometry``, ``bbox``, ``links``,
  ``assets``, ``properties.datetime`` and, when that is null, ``properties.start_datetime`` and
  ``end_datetime``); an ``include`` list returns only those fields; a POST ``exclude`` without
  ``include`` removes fields from the whole item; an empty ``include`` (every GET) removes them
  from the default set. The most specific path wins, and ``include`` wins over ``exclude``.
* **Sort** (``sortby``): GET ``sortby=-properties.datetime,+id``; POST ``[{"field": ...,
  "direction": "asc"|"desc"}]``. Fields are ``id``, ``collection`` or ``properties.<name>`` (a
  bare name means a property). Datetime properties sort as instants; items without a value come
  last in either direction; ties keep the unsorted order (collection by collection).
* **Query** (``query``): ``{"<property>": {"<op>": value, ...}, ...}`` (GET: the same JSON as
  text) with operators ``eq``, ``neq``, ``lt``, ``lte``, ``gt``, ``gte``, ``startsWith``,
  ``endsWith``, ``contains`` and ``in``; all conditions must hold. Numbers compare with numbers,
  strings with strings (datetime properties as instants), booleans only equal booleans; ``in``
  matches a value equal to one of the list's, or an array with such an element (``instruments``);
  an item without the property (or with ``null``) matches no condition on it, ``neq`` included.

Malformed values raise :class:`~.search.HTTPError` 400 with a one-line description.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .errors import HTTPError
from .items import parse_time

__all__ = [
    "DEFAULT_FIELDS",
    "QUERY_OPERATORS",
    "Condition",
    "FieldsSpec",
    "SortKey",
    "conditions_from_json",
    "conditions_from_text",
    "fields_from_json",
    "fields_from_text",
    "matches_all",
    "sort_value",
    "sortby_from_json",
    "sortby_from_text",
]

JSON = dict[str, Any]
Path = tuple[str, ...]

DEFAULT_FIELDS: tuple[str, ...] = (
    "type",
    "stac_version",
    "id",
    "geometry",
    "bbox",
    "links",
    "assets",
    "properties.datetime",
)
#: Properties compared and sorted as instants (RFC 3339 strings in STAC items).
DATETIME_PROPERTIES = frozenset(
    {"datetime", "start_datetime", "end_datetime", "created", "updated", "published", "expires"}
)
#: Top-level item members that are not sortable values.
_UNSORTABLE = frozenset(
    {"type", "stac_version", "stac_extensions", "geometry", "bbox", "links", "assets"}
)
QUERY_OPERATORS = (
    "eq",
    "neq",
    "lt",
    "lte",
    "gt",
    "gte",
    "startsWith",
    "endsWith",
    "contains",
    "in",
)


# -- fields --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldsSpec:
    """A parsed ``fields`` request; ``include=None`` means the include list was missing."""

    include: tuple[str, ...] | None
    exclude: tuple[str, ...]

    def apply(self, item: JSON) -> JSON:
        """The item with only the requested fields."""
        rules: dict[Path, bool] = {}
        if self.include is None:
            keep_rest = True
        else:
            keep_rest = False
            if not self.include:  # the default set
                defaults = list(DEFAULT_FIELDS)
                props = item.get("properties")
                if isinstance(props, dict) and props.get("datetime") is None:
                    defaults += ["properties.start_datetime", "properties.end_datetime"]
                rules.update((_path(f), True) for f in defaults)
        rules.update((_path(f), False) for f in self.exclude)
        rules.update((_path(f), True) for f in self.include or ())
        return _select(item, rules, keep_rest, ())


def _path(name: str) -> Path:
    return tuple(name.split("."))


def _select(obj: JSON, rules: dict[Path, bool], keep: bool, prefix: Path) -> JSON:
    out: JSON = {}
    depth = len(prefix) + 1
    for key, value in obj.items():
        path = (*prefix, key)
        here = rules.get(path, keep)
        deeper = isinstance(value, dict) and any(
            len(r) > depth and r[:depth] == path for r in rules
        )
        if deeper:
            sub = _select(value, rules, here, path)
            if sub or here:
                out[key] = sub
        elif here:
            out[key] = value
    return out


def _field_names(value: Any, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise HTTPError(400, f"Invalid fields: {what} must be a list of field names")
    return tuple(v.strip() for v in value)


def fields_from_text(text: str) -> FieldsSpec:
    """The ``fields`` GET parameter: comma-separated names, ``-`` to exclude, ``+`` to include."""
    include: list[str] = []
    exclude: list[str] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if part[0] == "-":
            name, target = part[1:].strip(), exclude
        else:
            name, target = part.lstrip("+").strip(), include
        if not name:
            raise HTTPError(400, f"Invalid fields {text!r}: empty field name")
        target.append(name)
    return FieldsSpec(tuple(include), tuple(exclude))


def fields_from_json(value: Any) -> FieldsSpec:
    """The ``fields`` member of a POST body (``null`` or ``{}``: the default set)."""
    if value is None:
        return FieldsSpec((), ())
    if not isinstance(value, dict):
        raise HTTPError(400, 'Invalid fields: expected {"include": [...], "exclude": [...]}')
    unknown = sorted(set(value) - {"include", "exclude"})
    if unknown:
        raise HTTPError(400, f"Invalid fields: unknown member {unknown[0]!r}")
    include = None if "include" not in value else _field_names(value["include"], "include")
    exclude = _field_names(value.get("exclude"), "exclude")
    if include is None and not exclude:
        include = ()
    return FieldsSpec(include, exclude)


# -- sort ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SortKey:
    """One ``sortby`` term: ``path`` is ``("id",)``, ``("collection",)`` or a property path."""

    path: Path
    descending: bool

    @property
    def name(self) -> str:
        """The field as the request names it (``properties.x`` for properties)."""
        return ".".join(self.path)


def _sort_path(field: str) -> Path:
    name = field.strip()
    if name in ("id", "collection"):
        return (name,)
    if name.startswith("properties."):
        name = name[len("properties.") :]
    elif name in _UNSORTABLE:
        raise HTTPError(400, f"Invalid sortby: cannot sort by {name!r}")
    if not name:
        raise HTTPError(400, f"Invalid sortby field {field!r}")
    return ("properties", name)


def sortby_from_text(text: str) -> tuple[SortKey, ...]:
    """The ``sortby`` GET parameter: ``+a,-b,c`` (no prefix: ascending)."""
    keys: list[SortKey] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        descending = part[0] == "-"
        keys.append(SortKey(_sort_path(part.lstrip("+-")), descending))
    return tuple(keys)


def sortby_from_json(value: Any) -> tuple[SortKey, ...]:
    """The ``sortby`` member of a POST body: ``[{"field": ..., "direction": ...}, ...]``."""
    if not isinstance(value, list):
        raise HTTPError(400, 'Invalid sortby: expected [{"field": ..., "direction": ...}, ...]')
    keys: list[SortKey] = []
    for term in value:
        if not isinstance(term, dict) or not isinstance(term.get("field"), str):
            raise HTTPError(400, 'Invalid sortby: each term needs a "field" name')
        direction = term.get("direction", "asc")
        if not isinstance(direction, str) or direction.lower() not in ("asc", "desc"):
            raise HTTPError(400, f"Invalid sortby direction {direction!r}: use asc or desc")
        keys.append(SortKey(_sort_path(term["field"]), direction.lower() == "desc"))
    return tuple(keys)


def sort_value(name: str, value: Any) -> tuple[int, Any] | None:
    """A comparable key for a property value (None: no value, sorted last).

    Numbers (and booleans) rank before strings, strings before other JSON values; datetime
    properties that parse become their instant (a number).
    """
    if value is None:
        return None
    if isinstance(value, bool | int | float):
        return (0, float(value))
    if isinstance(value, str):
        if name in DATETIME_PROPERTIES:
            try:
                return (0, parse_time(value))
            except ValueError:
                pass  # an unparseable datetime sorts with the strings, after the instants
        return (1, value)
    return (2, json.dumps(value, sort_keys=True))


# -- query ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Condition:
    """One ``query`` condition: ``properties[prop] <op> value``."""

    prop: str
    op: str
    value: Any

    def holds(self, props: JSON) -> bool:
        """Whether an item with these properties satisfies the condition."""
        have = props.get(self.prop)
        if have is None:
            return False
        op, want = self.op, self.value
        if op == "eq":
            return _equal(self.prop, have, want)
        if op == "neq":
            return not _equal(self.prop, have, want)
        if op == "in":
            values = have if isinstance(have, list) else [have]
            return any(_equal(self.prop, v, w) for v in values for w in want)
        if op in ("startsWith", "endsWith", "contains"):
            if not isinstance(have, str):
                return False
            if op == "startsWith":
                return have.startswith(want)
            return have.endswith(want) if op == "endsWith" else want in have
        order = _compare(self.prop, have, want)
        if order is None:
            return False
        return {"lt": order < 0, "lte": order <= 0, "gt": order > 0, "gte": order >= 0}[op]


def _comparable(prop: str, value: Any) -> tuple[str, Any] | None:
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | float):
        return ("number", float(value))
    if isinstance(value, str):
        if prop in DATETIME_PROPERTIES:
            try:
                return ("number", parse_time(value))
            except ValueError:
                pass  # not an instant: compared as text
        return ("string", value)
    return None


def _equal(prop: str, have: Any, want: Any) -> bool:
    a, b = _comparable(prop, have), _comparable(prop, want)
    if a is None or b is None:
        return bool(have == want)
    return a == b


def _compare(prop: str, have: Any, want: Any) -> int | None:
    a, b = _comparable(prop, have), _comparable(prop, want)
    if a is None or b is None or a[0] != b[0] or a[0] == "bool":
        return None
    return int(a[1] > b[1]) - int(a[1] < b[1])


_SCALAR = (str, int, float, bool)


def conditions_from_json(value: Any) -> tuple[Condition, ...]:
    """The ``query`` member of a POST body: ``{"prop": {"op": value}}``."""
    if not isinstance(value, dict):
        raise HTTPError(400, 'Invalid query: expected {"<property>": {"<operator>": value}}')
    out: list[Condition] = []
    for name, ops in value.items():
        prop = name[len("properties.") :] if name.startswith("properties.") else name
        if not prop or not isinstance(ops, dict) or not ops:
            raise HTTPError(400, f"Invalid query for {name!r}: expected {{<operator>: value}}")
        for op, want in ops.items():
            if op not in QUERY_OPERATORS:
                allowed = ", ".join(QUERY_OPERATORS)
                raise HTTPError(400, f"Invalid query operator {op!r} for {name!r} ({allowed})")
            _check_operand(name, op, want)
            out.append(Condition(prop, op, want))
    return tuple(out)


def _check_operand(name: str, op: str, want: Any) -> None:
    if op == "in":
        ok = isinstance(want, list) and bool(want) and all(isinstance(w, _SCALAR) for w in want)
        expected = "a non-empty list of values"
    elif op in ("startsWith", "endsWith", "contains"):
        ok, expected = isinstance(want, str), "a string"
    elif op in ("eq", "neq"):
        ok, expected = isinstance(want, _SCALAR), "a string, number or boolean"
    else:
        ok = isinstance(want, str | int | float) and not isinstance(want, bool)
        expected = "a number or a string"
    if not ok:
        raise HTTPError(400, f"Invalid query: {name!r} {op} needs {expected}, not {want!r}")


def conditions_from_text(text: str) -> tuple[Condition, ...]:
    """The ``query`` GET parameter: the POST object as JSON text."""
    try:
        value = json.loads(text)
    except ValueError:
        raise HTTPError(400, f"Invalid query {text!r}: not JSON") from None
    return conditions_from_json(value)


def matches_all(conditions: Sequence[Condition], props: Any) -> bool:
    """Whether every condition holds for an item's ``properties``."""
    if not isinstance(props, dict):
        return False
    return all(c.holds(props) for c in conditions)
