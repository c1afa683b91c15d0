"""The asset index built in a child interpreter: :class:`IndexProcess`.

A tarball's index, or the walk of a large static STAC catalogue, is CPU-bound Python (tar
headers or item documents, JSON, filters, inserts): in the download's own interpreter it would
compete with the transfer event loop for the GIL. The child runs the same
:class:`~.index.IndexBuilder`; the two processes share nothing but the manifest file (the
parent reads the rows as they are committed). Progress, the collections and keys seen so far,
log records and warnings come back over a pipe; if the parent dies, the child sees its stdin
close and stops.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import struct
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

from ..exceptions import DownloadError
from .index import Cancelled, IndexBuilder, IndexConfig
from .local_catalog import localize_once
from .manifest import Manifest

__all__ = ["IndexProcess"]

_LEN = struct.Struct("!I")


def _send(out: IO[bytes], lock: threading.Lock, msg: object) -> None:
    data = pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL)
    with lock:
        out.write(_LEN.pack(len(data)) + data)
        out.flush()


def _read_exact(read: Callable[[int], bytes], n: int) -> bytes:
    chunks: list[bytes] = []
    while n > 0:
        chunk = read(n)
        if not chunk:
            break
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _receive(read: Callable[[int], bytes]) -> Any:
    """The next message read with ``read`` (a file's or a descriptor's), or None at the end
    of the stream."""
    head = _read_exact(read, _LEN.size)
    if len(head) < _LEN.size:
        return None
    (n,) = _LEN.unpack(head)
    data = _read_exact(read, n)
    if len(data) < n:
        return None
    return pickle.loads(data)  # our own child process, over its own pipe


def _portable_error(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling, else a :class:`DownloadError` with its text."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return DownloadError(f"{type(exc).__name__}: {exc}")
    return exc


class _ForwardWarnings(logging.Handler):
    """In the child: hand warnings (and worse) to the parent, which logs them as its own."""

    def __init__(self, out: IO[bytes], lock: threading.Lock) -> None:
        super().__init__(logging.WARNING)
        self._out = out
        self._lock = lock

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):
            _send(self._out, self._lock, ("log", record.name, record.levelno, record.getMessage()))


def _child_main() -> int:
    """Entry point of the child interpreter: one build, requested over stdin."""
    out = sys.stdout.buffer
    sys.stdout = sys.stderr  # a stray print must not corrupt the message stream
    lock = threading.Lock()
    stdin_fd = sys.stdin.fileno()  # read unbuffered: no read-ahead, no lock at shutdown

    def read(n: int) -> bytes:
        return os.read(stdin_fd, n)

    request = _receive(read)
    if request is None:  # the parent did not need us
        return 0
    cfg, collection_types, start_seq = request
    cancelled = threading.Event()

    def watch_parent() -> None:
        with contextlib.suppress(OSError):
            read(1)  # a byte: cancel; end of file: the parent is gone
        cancelled.set()

    threading.Thread(target=watch_parent, name="mlhub-index-parent", daemon=True).start()
    package = logging.getLogger(__name__.rpartition(".")[0])
    package.addHandler(_ForwardWarnings(out, lock))
    package.setLevel(logging.WARNING)

    def forward_warning(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: IO[str] | None = None,
        line: str | None = None,
    ) -> None:
        """A ``warnings.warn`` of the walk (e.g. a link cycle) goes to the parent, which
        issues it again: a notebook shows the parent's warnings, not this process's stderr."""
        try:
            _send(out, lock, ("warning", category, str(message)))
        except (pickle.PicklingError, AttributeError, TypeError):  # a class pickle cannot name
            _send(out, lock, ("warning", UserWarning, f"{category.__name__}: {message}"))

    warnings.showwarning = forward_warning

    def on_progress(items: int, assets: int, selected: int) -> None:
        _send(out, lock, ("progress", items, assets, selected))

    keys_sent = -1

    def on_commit() -> None:
        nonlocal keys_sent
        n_keys = sum(len(keys) for keys in builder.seen_keys.values())
        keys = builder.seen_keys if n_keys != keys_sent else None
        keys_sent = n_keys
        _send(out, lock, ("commit", builder.items, builder.assets, builder.selected, keys))

    builder = IndexBuilder(cfg, collection_types, start_seq, on_progress, cancelled, on_commit)
    builder.run()
    error = builder.error
    _send(
        out,
        lock,
        (
            "done",
            {
                "items": builder.items,
                "assets": builder.assets,
                "selected": builder.selected,
                "skipped_hrefs": builder.skipped_hrefs,
                "seen_keys": builder.seen_keys,
                "md5": builder.catalog_md5(),
                "error": None if error is None else _portable_error(error),
            },
        ),
    )
    if error is None and not cancelled.is_set():
        _localize(cfg, cancelled)
    return 0


def _localize(cfg: IndexConfig, cancelled: threading.Event) -> None:
    """In the child, after the build: what the unpacking left of the local catalogue
    (:func:`.local_catalog.localize_once`: nothing, unless a document was too large to
    rewrite as it was unpacked), done while the parent's transfers run. The parent waits for
    this process to end, then does whatever is not done (cancelled, or failed: its own
    attempt raises the error, so none is lost here)."""
    try:
        with Manifest(cfg.manifest_path) as db:
            localize_once(
                db, cfg.output_dir, cfg.manifest_path.parent, cfg.dataset_id, cancelled.is_set
            )
    except Exception as exc:
        logging.getLogger(__name__).debug("local catalogue left to the download: %s", exc)


_CHILD_CODE = (
    "import sys\n"
    "if sys.argv[1] not in sys.path: sys.path.insert(0, sys.argv[1])\n"
    "from mlhub_widgets.download.index_process import _child_main\n"
    "sys.exit(_child_main())\n"
)


class IndexProcess:
    """An :class:`IndexBuilder` in a child interpreter, with the builder's surface.

    :meth:`spawn` starts the interpreter (it imports while the parent fetches the
    catalogue); :meth:`begin` hands it the build; :meth:`discard` ends an unused one.
    Progress, the collections/keys seen so far and warnings come back over a pipe; the rows
    go straight into the manifest. Cancelling (setting ``cancelled``) stops the child at the
    next catalogue member; if the parent dies, the child sees its stdin close and stops too.
    """

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self._proc = proc
        self.items = 0
        self.assets = 0
        self.selected = 0
        self.skipped_hrefs = 0
        self.seen_keys: dict[str, set[str]] = {}
        self.error: BaseException | None = None
        self.done = threading.Event()  # the index is built (or failed)
        self.ended = threading.Event()  # the child has exited and its last message was read
        self.cancelled = threading.Event()
        self.seconds = 0.0
        self._md5 = ""
        self._on_progress: Callable[[int, int, int], None] = lambda _i, _a, _s: None
        self._threads: list[threading.Thread] = []
        self._started = 0.0

    @classmethod
    def spawn(cls) -> IndexProcess:
        """Start an idle child interpreter. Raises OSError if it cannot be started."""
        package_parent = str(Path(__file__).resolve().parents[2])  # holds mlhub_widgets/
        flags = getattr(subprocess, "CREATE_NO_WINDOW", 0) if os.name == "nt" else 0
        proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD_CODE, package_parent],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            creationflags=flags,
        )
        return cls(proc)

    def begin(
        self,
        cfg: IndexConfig,
        collection_types: Mapping[str, list[str]],
        start_seq: int,
        on_progress: Callable[[int, int, int], None],
        cancelled: threading.Event,
    ) -> None:
        """Hand the child its build and start following it (``cfg`` is pickled: a source
        in it is copied, see :meth:`.Pipeline._source_for_process`)."""
        self.cancelled = cancelled
        self._on_progress = on_progress
        self._started = time.monotonic()
        stdin = self._proc.stdin
        assert stdin is not None
        try:
            _send(stdin, threading.Lock(), (cfg, dict(collection_types), start_seq))
        except OSError as exc:  # the child died at start-up (its stderr says why)
            self.error = DownloadError(f"the catalogue indexer process did not start: {exc}")
            self._finish()
            return
        for target, name in (
            (self._follow, "mlhub-index-follow"),
            (self._watch, "mlhub-index-cancel"),
        ):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def join(self) -> None:
        """Wait until the child ended and its last message was read (:attr:`done` is set
        earlier, when the index is built: the child then writes the local catalogue)."""
        self.ended.wait()
        for thread in self._threads:
            thread.join()

    def catalog_md5(self) -> str:
        """MD5 of the catalogue tarball's bytes, as read by the child."""
        return self._md5

    def discard(self) -> None:
        """End a child that was spawned but never given a build."""
        with contextlib.suppress(OSError):
            self._proc.kill()
        self._close_pipes()
        self._proc.wait()

    def _close_pipes(self) -> None:
        for pipe in (self._proc.stdin, self._proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()

    def _watch(self) -> None:
        while not self.ended.wait(0.05):
            if self.cancelled.is_set():
                stdin = self._proc.stdin
                with contextlib.suppress(OSError, ValueError):
                    if stdin is not None:
                        stdin.write(b"c")
                        stdin.flush()
                return

    def _follow(self) -> None:
        stdout = self._proc.stdout
        assert stdout is not None
        finished = False
        try:
            while (msg := _receive(stdout.read)) is not None:
                kind = msg[0]
                if kind == "commit":
                    _, self.items, self.assets, self.selected, keys = msg
                    if keys is not None:
                        self.seen_keys = keys
                elif kind == "progress":
                    _, self.items, self.assets, self.selected = msg
                    self._on_progress(self.items, self.assets, self.selected)
                elif kind == "log":
                    _, name, level, text = msg
                    logging.getLogger(name).log(level, "%s", text)
                elif kind == "warning":
                    _, category, text = msg
                    warnings.warn(text, category, stacklevel=1)
                elif kind == "done":
                    state = msg[1]
                    self.items, self.assets = state["items"], state["assets"]
                    self.selected, self.skipped_hrefs = state["selected"], state["skipped_hrefs"]
                    self.seen_keys, self._md5 = state["seen_keys"], state["md5"]
                    self.error = state["error"]
                    finished = True
                    self.seconds = time.monotonic() - self._started
                    self.done.set()  # the child goes on with the local catalogue
        except Exception as exc:
            self.error = DownloadError(f"lost track of the catalogue indexer process: {exc}")
            finished = True
        code = self._proc.wait()
        if not finished:
            self.error = (
                Cancelled()
                if self.cancelled.is_set()
                else DownloadError(
                    f"the catalogue indexer process ended unexpectedly (exit status {code}); "
                    "run the download again to continue"
                )
            )
        self._finish()

    def _finish(self) -> None:
        self._close_pipes()
        if not self.done.is_set():
            self.seconds = time.monotonic() - self._started if self._started else 0.0
            self.done.set()
        self.ended.set()


if __name__ == "__main__":  # pragma: no cover - started by IndexProcess.spawn
    sys.exit(_child_main())
