"""The demo launcher: the one client-side module that starts the bundled hub.

* :func:`run_demo` (``mlhub demo``) starts the bundled MLHub-compatible hub on loopback, points
  ``MLHUB_ROOT_URL`` at it and serves the explorer app
  (:data:`~mlhub_widgets.widgets.voila_app.APP_NOTEBOOK`) with Voila on ``127.0.0.1``, freeing
  the kernel of every closed or reloaded page. The explorer client talks to the hub exactly as
  to a remote API; downloads go to ``MLHUB_OUTPUT_DIR`` (default: ``./downloads``).
* :func:`run_hub` (``mlhub hub``) serves the hub alone until Ctrl-C.
* :func:`demo_hub_url` starts one hub per process for the explorer's "bundled demo hub" choice.

The hub (:mod:`mlhub_widgets.hub`) imports nothing from the client side; the client reaches it
only through this module (``tests/test_architecture.py`` checks both).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def wait_until_listening(
    proc: subprocess.Popen[Any], port: int, host: str = "127.0.0.1", timeout: float = 180.0
) -> bool:
    """Whether ``proc`` listens on ``host:port`` within ``timeout`` s (False if it exits)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return True
        except OSError:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=0.2)  # returns at once if it exits meanwhile
    return False


def run_demo(*, port: int = 8866, data_dir: str | None = None, voila: bool = True) -> int:
    """Serve the hub and (unless ``voila=False``) the explorer; blocks until Ctrl-C.

    The explorer's URL is printed once Voila answers on ``port`` (which must be free; the
    ``mlhub demo`` command checks it first). If Voila stops before, its own log says why and
    its exit status is returned.
    """
    from .hub import serve

    if threading.current_thread() is threading.main_thread():
        # SIGTERM (a service manager, `kill`) stops Voila and the hub as Ctrl-C does
        signal.signal(signal.SIGTERM, _interrupt)
    with serve(data_dir) as hub:
        print(f"Bundled MLHub-compatible hub: {hub.url}", flush=True)
        print("Datasets served: " + ", ".join(sorted(hub.dataset_ids())), flush=True)
        if not voila:
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
            return 0
        from .widgets.voila_app import APP_NOTEBOOK, voila_command

        # absolute: the app's kernels run in the notebook's folder, inside the package
        output = Path(os.environ.get("MLHUB_OUTPUT_DIR") or "downloads").expanduser().absolute()
        env = {**os.environ, "MLHUB_ROOT_URL": hub.url, "MLHUB_OUTPUT_DIR": str(output)}
        print(f"Downloads go to {output}", flush=True)
        print(f"Starting Voila on 127.0.0.1:{port}…", flush=True)
        cmd = voila_command(APP_NOTEBOOK, port=port)
        proc = subprocess.Popen(cmd, cwd=APP_NOTEBOOK.parent, env=env)
        try:
            if not wait_until_listening(proc, port):
                _stop(proc)
                print(
                    f"mlhub: error: Voila did not start on 127.0.0.1:{port} (see its log above)",
                    file=sys.stderr,
                    flush=True,
                )
                return proc.returncode or 1
            print(f"Explorer (Voila): http://127.0.0.1:{port}/   — Ctrl-C to stop", flush=True)
            return proc.wait()
        except KeyboardInterrupt:
            _stop(proc)
            return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_hub(argv: Sequence[str]) -> int:
    """``python -m mlhub_widgets.hub`` with these arguments (see :func:`mlhub_widgets.hub.main`)."""
    from .hub import main

    return main(list(argv))


_HUB_LOCK = threading.Lock()
_HUB: Any = None


def demo_hub_url() -> str:
    """API root of the bundled demo hub, started in this process on first use.

    The hub lives until the interpreter (the notebook kernel) exits. Blocking: call it from a
    worker thread (:meth:`~mlhub_widgets.widgets.state.ExplorerState.connect` does).
    """
    global _HUB
    with _HUB_LOCK:
        if _HUB is None:
            from .hub import serve

            manager = serve()
            server = manager.__enter__()
            atexit.register(manager.__exit__, None, None, None)
            _HUB = server
        return str(_HUB.url)
