"""Small downloaded files verified and written to disk, in a helper process.

A small file arrives whole in memory. Putting it on disk takes a checksum and five system calls
(``mkdir`` when its folder is new, ``open``, ``write``, ``close``, ``rename``); in a thread of
the downloading process every one of them hands the interpreter lock back and forth with the
event loop, which then stalls. :class:`WriterProcess` sends the bodies over a pipe to a second
interpreter that does all of it (:func:`write_small`) and answers with one small message per
batch, so the event loop only pickles and unpickles. If the helper cannot start or dies, the
files it had not confirmed are written by the caller's fallback (threads) instead: they are
written again from the start, which is safe because nothing reaches its final name unverified.

This module imports only the standard library: the helper runs it as a script
(``python -I -S file_writer.py``), without the rest of the package.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import pickle
import signal
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    import asyncio
    import subprocess

__all__ = ["PART_FLAGS", "WriterProcess", "body_mismatch", "write_small"]

# The helper imports only what writing needs (no logging, no subprocess: ~2 MB of its RSS);
# the parent-side class imports those where it uses them (the parent has them loaded anyway).

PART_FLAGS: Final = os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
HASH_LABEL: Final = {"sha256": "sha2-256", "sha512": "sha2-512", "sha384": "sha2-384"}
_HEADER: Final = 4  # bytes of the big-endian length before each pickled batch
_READ_SIZE: Final = 1 << 20

#: ``write_small`` result: None, or ``(what, errno, message)``; ``what`` is ``"mismatch"``
#: (errno 0), ``"write"`` or ``"move"``.
Failure = tuple[str, int, str] | None
#: ``write_small`` arguments: part path, final path, body, ``.meta`` path to remove (or None),
#: expected ``(hashlib name, digest)`` (or None) and the ``Content-MD5`` header (or None).
WriteArgs = tuple[str, str, bytes, str | None, tuple[str, bytes] | None, str | None]


def unlink_quietly(path: str) -> None:
    """Remove ``path`` if it exists."""
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        os.unlink(path)


def open_part(path: str, flags: int) -> int:
    """Open ``path`` with ``flags``, creating its folders when they are missing."""
    try:
        return os.open(path, flags, 0o644)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        return os.open(path, flags, 0o644)


def write_all(fd: int, data: bytes | memoryview, offset: int) -> None:
    """Write all of ``data`` at ``offset`` (short writes are rare but legal)."""
    view = memoryview(data)
    total = len(view)
    done = os.pwrite(fd, view, offset)
    while done < total:
        done += os.pwrite(fd, view[done:], offset + done)


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
            write_all(fd, body, 0)
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


def _frame(obj: object) -> bytes:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return len(data).to_bytes(_HEADER, "big") + data


def _frames(buf: bytearray) -> list[Any]:
    """Take the complete frames off the front of ``buf``."""
    out = []
    pos = 0
    n = len(buf)
    while n - pos >= _HEADER:
        size = int.from_bytes(buf[pos : pos + _HEADER], "big")
        if n - pos - _HEADER < size:
            break
        out.append(pickle.loads(buf[pos + _HEADER : pos + _HEADER + size]))
        pos += _HEADER + size
    del buf[:pos]
    return out


def _write_fd(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def serve(infd: int = 0, outfd: int = 1) -> int:
    """The helper's loop: batches of ``(id, WriteArgs)`` in, batches of ``(id, Failure)`` out,
    until its input closes (the parent finished, or died)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    buf = bytearray()
    replying = True
    while chunk := os.read(infd, _READ_SIZE):
        buf += chunk
        for batch in _frames(buf):
            replies = []
            for rid, args in batch:
                try:
                    result: Failure = write_small(*args)
                except Exception as exc:  # a bug: the parent reports it for this file
                    result = ("write", 0, f"{type(exc).__name__}: {exc}")
                replies.append((rid, result))
            if replying:
                try:
                    _write_fd(outfd, _frame(replies))
                except BrokenPipeError:  # the parent stopped listening: finish the files
                    replying = False
    return 0


class WriterProcess:
    """A helper interpreter running :func:`write_small` for the event loop ``loop``.

    :meth:`submit` returns a future resolved in the loop with the ``write_small`` result.
    Requests made in one loop iteration travel as one batch. If the helper dies, the requests
    it had not answered (and all later ones) go to ``fallback`` instead. Use from the loop's
    thread only.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        proc: subprocess.Popen[bytes],
        fallback: Callable[[WriteArgs], asyncio.Future[Failure]],
    ) -> None:
        assert proc.stdin is not None and proc.stdout is not None
        self.loop = loop
        self.fallback = fallback
        self._proc = proc
        self._out = proc.stdin.fileno()
        self._in = proc.stdout.fileno()
        os.set_blocking(self._out, False)
        os.set_blocking(self._in, False)
        _widen_pipe(self._out)
        self._pending: dict[int, tuple[asyncio.Future[Failure], WriteArgs]] = {}
        self._batch: list[tuple[int, WriteArgs]] = []
        self._flush_scheduled = False
        self._unsent = bytearray()
        self._replies = bytearray()
        self._next_id = 0
        self.alive = True
        loop.add_reader(self._in, self._read)

    @classmethod
    def spawn(
        cls,
        loop: asyncio.AbstractEventLoop,
        fallback: Callable[[WriteArgs], asyncio.Future[Failure]],
    ) -> WriterProcess:
        """Start the helper. Raises OSError if it cannot be started here."""
        script = os.path.abspath(__file__)
        if os.name == "nt" or not os.path.isfile(script):
            raise OSError("no helper process on this platform or installation")
        import subprocess

        proc = subprocess.Popen(
            [sys.executable, "-I", "-S", script],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            close_fds=True,
        )
        return cls(loop, proc, fallback)

    def submit(self, args: WriteArgs) -> asyncio.Future[Failure]:
        """Verify and write one small file in the helper (see :func:`write_small`)."""
        if not self.alive:
            return self.fallback(args)
        fut: asyncio.Future[Failure] = self.loop.create_future()
        rid = self._next_id
        self._next_id = rid + 1
        self._pending[rid] = (fut, args)
        self._batch.append((rid, args))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)
        return fut

    def _flush(self) -> None:
        self._flush_scheduled = False
        if not self._batch or not self.alive:
            return
        data = _frame(self._batch)
        self._batch = []
        if self._unsent:  # the pipe is full: the writer callback sends it in order
            self._unsent += data
            return
        try:
            sent = os.write(self._out, data)
        except BlockingIOError:
            sent = 0
        except OSError:
            self._lost("its pipe closed")
            return
        if sent < len(data):
            self._unsent += data[sent:]
            self.loop.add_writer(self._out, self._send_rest)

    def _send_rest(self) -> None:
        try:
            sent = os.write(self._out, self._unsent)
        except BlockingIOError:
            return
        except OSError:
            self._lost("its pipe closed")
            return
        del self._unsent[:sent]
        if not self._unsent:
            self.loop.remove_writer(self._out)

    def _read(self) -> None:
        try:
            chunk = os.read(self._in, _READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._lost("it exited")
            return
        self._replies += chunk
        pending = self._pending
        for batch in _frames(self._replies):
            for rid, result in batch:
                entry = pending.pop(rid, None)
                if entry is not None and not entry[0].done():
                    entry[0].set_result(result)

    def _lost(self, why: str) -> None:
        """The helper is gone: its unanswered requests go to the fallback."""
        if not self.alive:
            return
        self.alive = False
        self._stop_watching()
        code = self._proc.poll()
        import logging

        logging.getLogger(__name__).warning(
            "the file-writer process stopped (%s, exit status %s); %d files go to threads",
            why,
            code,
            len(self._pending),  # the unsent batch is in there too
        )
        pending, self._pending, self._batch = self._pending, {}, []
        for fut, args in pending.values():
            if not fut.done():
                _chain(self.fallback(args), fut)

    def _stop_watching(self) -> None:
        with contextlib.suppress(Exception):
            self.loop.remove_reader(self._in)
        if self._unsent:
            with contextlib.suppress(Exception):
                self.loop.remove_writer(self._out)
            self._unsent.clear()

    def close(self, timeout: float = 10.0) -> None:
        """End the helper once it has written what it already received (blocks up to
        ``timeout``). Call it when nothing awaits a result any more: requests not yet handed
        over are dropped (their files stay missing, to be fetched again) and their futures
        cancelled."""
        self.alive = False
        self._stop_watching()
        for fut, _args in self._pending.values():
            fut.cancel()
        self._pending.clear()
        self._batch.clear()
        # input closed: the helper writes what it has, then exits (without replying)
        for pipe in (self._proc.stdin, self._proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        import subprocess

        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


def _widen_pipe(fd: int) -> None:
    """Let the request pipe hold 1 MiB instead of 64 KiB (Linux), if allowed: a few hundred
    small files in flight, without the event loop waiting for the pipe to drain."""
    try:
        import fcntl

        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, _READ_SIZE)
    except (ImportError, AttributeError, OSError):
        pass  # another platform, or a lower pipe-max-size: the default size works too


def _chain(source: asyncio.Future[Failure], target: asyncio.Future[Failure]) -> None:
    def copy(done: asyncio.Future[Failure]) -> None:
        if target.done():
            return
        if done.cancelled():
            target.cancel()
        elif done.exception() is not None:
            target.set_exception(done.exception())  # type: ignore[arg-type]
        else:
            target.set_result(done.result())

    source.add_done_callback(copy)


if __name__ == "__main__":
    sys.exit(serve())
