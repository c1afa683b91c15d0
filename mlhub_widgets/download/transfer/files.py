"""Writing downloaded bytes: ``.part`` files, whole small files, sequential writes.

Everything here is portable (no ``os.pwrite``, no ``fork``): a file is written from one position
onwards in order, so each writer keeps its own file descriptor positioned once with
``os.lseek``. Nothing but a verified file ever gets its final name.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
from typing import Final

__all__ = [
    "HASH_LABEL",
    "PART_FLAGS",
    "Failure",
    "body_mismatch",
    "open_part",
    "unlink_quietly",
    "write_all",
    "write_small",
]

#: ``os.open`` flags of a ``.part`` (``O_BINARY`` matters on Windows, ``O_CLOEXEC`` on POSIX).
PART_FLAGS: Final = (
    os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
)
HASH_LABEL: Final = {"sha256": "sha2-256", "sha512": "sha2-512", "sha384": "sha2-384"}

#: ``write_small`` result: None, or ``(what, errno, message)``; ``what`` is ``"mismatch"``
#: (errno 0), ``"write"`` or ``"move"``.
Failure = tuple[str, int, str] | None


def unlink_quietly(path: str) -> None:
    """Remove ``path`` if it exists."""
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        os.unlink(path)


def open_part(path: str, flags: int, offset: int = 0) -> int:
    """Open ``path`` with ``flags`` (creating its folders when they are missing), positioned at
    ``offset``."""
    try:
        fd = os.open(path, flags, 0o644)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        fd = os.open(path, flags, 0o644)
    if offset:
        try:
            os.lseek(fd, offset, os.SEEK_SET)
        except OSError:
            os.close(fd)
            raise
    return fd


def write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    """Write all of ``data`` at the descriptor's position (short writes are rare but legal)."""
    view = memoryview(data)
    done = os.write(fd, view)
    while done < len(view):
        done += os.write(fd, view[done:])


def body_mismatch(
    expected: tuple[str, bytes] | None, body: bytes, md5_header: str | None
) -> str | None:
    """Why a complete body is not what the catalogue checksum ``expected`` (or, when there is
    none, the ``Content-MD5`` header) promised, if so."""
    if expected is not None:
        if hashlib.new(expected[0], body).digest() != expected[1]:
            return f"checksum mismatch ({HASH_LABEL.get(expected[0], expected[0])})"
    elif md5_header and (
        base64.b64encode(hashlib.md5(body).digest()).decode() != md5_header.strip()
    ):
        return "Content-MD5 mismatch"
    return None


def write_small(
    part: str,
    dest: str,
    body: bytes,
    meta_path: str | None,
    expected: tuple[str, bytes] | None,
    md5_header: str | None,
) -> Failure:
    """Verify a whole small file, write it to ``part`` and rename it to ``dest``.

    Nothing is written when the body does not verify, and nothing but a verified file ever
    gets the name ``dest``. Returns None, or ``(what, errno, message)`` (see :data:`Failure`).
    """
    mismatch = body_mismatch(expected, body, md5_header)
    if mismatch is not None:
        return "mismatch", 0, mismatch
    try:
        fd = open_part(part, PART_FLAGS | os.O_TRUNC)
        try:
            write_all(fd, body)
        finally:
            os.close(fd)
    except OSError as exc:
        unlink_quietly(part)
        return "write", exc.errno or 0, str(exc.strerror or exc)
    try:
        os.replace(part, dest)
    except OSError as exc:
        unlink_quietly(part)
        return "move", exc.errno or 0, str(exc.strerror or exc)
    if meta_path is not None:
        unlink_quietly(meta_path)
    return None
