"""The explorer as a Voila app: its notebook, and the Voila settings that free its kernels.

Voila starts one kernel (about 160 MB with the explorer) per page load. Two things end it:

* **The page's shutdown request.** When the page unloads, Voila's page sends
  ``POST /voila/api/shutdown/<kernel>`` with the ``_xsrf`` cookie's value. Voila never sets
  that cookie on its own (its page handler renders without asking for the XSRF token), so the
  request gets 403 and the kernel keeps running: every reload leaked one. The
  :func:`set_xsrf_cookie` pre-launch hook asks for the token while the page is being served,
  which sets the cookie; the shutdown then works.
* **Kernel culling** (:data:`KERNEL_CULLING`), for pages that go without unloading (a crashed
  or killed browser, a phone that drops the tab): a kernel with no page connected and idle for
  :data:`CULL_IDLE_TIMEOUT` seconds is shut down. A page that is open, even idle, keeps its
  kernel (``cull_connected=False``); a download running in a kernel whose page is gone stops
  with it (what is on disk stays resumable).

``mlhub demo`` runs ``python -m mlhub_widgets.widgets.voila_app NOTEBOOK --port=N ...`` (see
:func:`voila_command`); Binder's ``binder/jupyter_server_config.py`` sets the same for Voila as
a Jupyter server extension.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

#: The app: one code cell that shows the explorer (no tutorial text, no second title).
APP_NOTEBOOK = Path(__file__).resolve().parent / "data" / "mlhub-explorer.ipynb"

#: Seconds a kernel with no page connected may stay idle before it is shut down.
CULL_IDLE_TIMEOUT = 300
#: ``MappingKernelManager`` settings (jupyter_server) for every way the app is served.
KERNEL_CULLING: dict[str, Any] = {
    "cull_idle_timeout": CULL_IDLE_TIMEOUT,
    "cull_interval": 60,
    "cull_connected": False,
}


def set_xsrf_cookie(req: Any, notebook: Any = None, cwd: str | None = None) -> None:
    """Voila pre-launch hook: set the ``_xsrf`` cookie on the page's response.

    Reading ``xsrf_token`` makes tornado add the cookie to the response (whose headers are not
    sent yet); the page's ``beforeunload`` handler then sends the token with the kernel's
    shutdown request. Returns None: the notebook is used as it is.
    """
    req.xsrf_token  # noqa: B018  (the property sets the cookie)


def culling_args(culling: Mapping[str, Any] | None = None) -> list[str]:
    """``--MappingKernelManager.<name>=<value>`` arguments for :data:`KERNEL_CULLING`."""
    out = []
    for name, value in {**KERNEL_CULLING, **(culling or {})}.items():
        text = str(value) if not isinstance(value, bool) else ("True" if value else "False")
        out.append(f"--MappingKernelManager.{name}={text}")
    return out


def voila_command(
    notebook: Path = APP_NOTEBOOK,
    *,
    port: int,
    culling: Mapping[str, Any] | None = None,
    extra: Sequence[str] = (),
) -> list[str]:
    """The command that serves ``notebook`` with Voila on ``127.0.0.1:port``, kernels freed.

    Run it with the notebook's folder as the working directory (Voila starts kernels there).
    ``culling`` overrides entries of :data:`KERNEL_CULLING` (tests use short timeouts).
    ``port_retries=0``: Voila must not move to another port when this one is taken (it would
    serve where nobody looks while the printed link opens whatever holds the port).
    """
    return [
        sys.executable,
        "-m",
        "mlhub_widgets.widgets.voila_app",
        notebook.name,
        "--no-browser",
        f"--port={port}",
        "--Voila.ip=127.0.0.1",
        "--Voila.port_retries=0",
        *culling_args(culling),
        *extra,
    ]


def main(argv: Sequence[str] | None = None) -> None:
    """Voila's command line, with :func:`set_xsrf_cookie` as the pre-launch hook."""
    from traitlets.config import Config
    from voila.app import Voila

    config = Config()
    config.VoilaConfiguration.prelaunch_hook = set_xsrf_cookie
    Voila.launch_instance(argv=list(sys.argv[1:] if argv is None else argv), config=config)


if __name__ == "__main__":
    main()
