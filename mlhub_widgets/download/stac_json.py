"""Reading a large STAC catalogue or collection document in bounded memory.

A collection of a big dataset lists every item in ``links`` (half a million links at a million
assets: ~45 MB of JSON, ~250 MB as Python objects). Indexing never needs those links: the
items are read from their own files. :func:`load_without_item_links` parses such a document
from a stream of byte chunks, decoding the top-level ``links`` array one link at a time and
keeping only the links that do not point at items or child catalogues, so memory stays at
one chunk plus the small rest of the document.

This module may import only the standard library.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterable, Iterator
from typing import Any

__all__ = ["DROPPED_RELS", "load_without_item_links"]

#: Link relations left out by :func:`load_without_item_links`.
DROPPED_RELS = frozenset({"item", "child"})

_WHITESPACE = " \t\n\r"
_DECODER = json.JSONDecoder()
_TRIM_AT = 1 << 20  # drop the consumed head of the window past this many characters


class _Window:
    """A sliding text window over UTF-8 byte chunks, for ``JSONDecoder.raw_decode``."""

    def __init__(self, chunks: Iterable[bytes | memoryview]) -> None:
        self._chunks: Iterator[bytes | memoryview] = iter(chunks)
        self._utf8 = codecs.getincrementaldecoder("utf-8")("strict")
        self.text = ""
        self.pos = 0
        self.eof = False
        self._first = True

    def more(self) -> bool:
        """Append the next chunk; False at the end of the stream."""
        if self.eof:
            return False
        if self.pos > _TRIM_AT:
            self.text = self.text[self.pos :]
            self.pos = 0
        for chunk in self._chunks:
            piece = self._utf8.decode(chunk)
            if self._first and piece:
                piece = piece.removeprefix("\ufeff")  # json.loads accepts a BOM in bytes
                self._first = False
            if piece:
                self.text += piece
                return True
        self.text += self._utf8.decode(b"", final=True)
        self.eof = True
        return False

    def peek(self) -> str:
        """The next non-whitespace character ('' at the end), without consuming it."""
        while True:
            text, pos = self.text, self.pos
            while pos < len(text) and text[pos] in _WHITESPACE:
                pos += 1
            self.pos = pos
            if pos < len(text):
                return text[pos]
            if not self.more():
                return ""

    def expect(self, chars: str) -> str:
        """Consume one of ``chars`` (after whitespace) and return it."""
        ch = self.peek()
        if not ch or ch not in chars:
            raise ValueError(f"expected one of {chars!r} at offset {self.pos}, got {ch!r}")
        self.pos += 1
        return ch

    def value(self) -> Any:
        """Decode the next JSON value (it may span chunks)."""
        self.peek()
        while True:
            try:
                obj, end = _DECODER.raw_decode(self.text, self.pos)
            except json.JSONDecodeError:
                # incomplete (or invalid): at least double what follows ``pos`` before the
                # next attempt, so a value spanning many chunks is not re-parsed per chunk
                want = 2 * (len(self.text) - self.pos) + 1
                grew = False
                while len(self.text) - self.pos < want and self.more():
                    grew = True
                if grew:
                    continue
                raise
            # a number cut by the window's end may continue in the next chunk ("12" | "3",
            # "1." | "5", "2e" | "+7"): only an unambiguous end is taken
            if (
                not self.eof
                and (
                    end == len(self.text)
                    or (type(obj) in (int, float) and not self.text[end:].strip("eE.+-"))
                )
                and self.more()
            ):
                continue
            self.pos = end
            return obj


def load_without_item_links(chunks: Iterable[bytes | memoryview]) -> Any:
    """Parse a JSON document from UTF-8 byte chunks; if it is an object, its top-level
    ``links`` array keeps only links whose ``rel`` is not in :data:`DROPPED_RELS`.

    Everything else is exactly what ``json.loads`` gives. Raises ``ValueError`` (or
    ``UnicodeDecodeError``) for text that is not one valid JSON document.
    """
    win = _Window(chunks)
    if win.peek() != "{":
        doc = win.value()
        if win.peek():
            raise ValueError("extra data after the JSON document")
        return doc
    win.expect("{")
    out: dict[str, Any] = {}
    if win.peek() == "}":
        win.pos += 1
    else:
        while True:
            key = win.value()
            if not isinstance(key, str):
                raise ValueError("object keys must be strings")
            win.expect(":")
            if key == "links" and win.peek() == "[":
                out[key] = _kept_links(win)
            else:
                out[key] = win.value()
            if win.expect(",}") == "}":
                break
    if win.peek():
        raise ValueError("extra data after the JSON document")
    return out


def _kept_links(win: _Window) -> list[Any]:
    win.expect("[")
    kept: list[Any] = []
    if win.peek() == "]":
        win.pos += 1
        return kept
    while True:
        link = win.value()
        if not (isinstance(link, dict) and link.get("rel") in DROPPED_RELS):
            kept.append(link)
        if win.expect(",]") == "]":
            return kept
