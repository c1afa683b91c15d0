"""``mlhub demo``: the explorer notebook in Voila, talking to the bundled hub.

Starts the bundled MLHub-compatible hub on loopback, points ``MLHUB_ROOT_URL`` at it and serves
``notebooks/01-explorer.ipynb`` with Voila on ``127.0.0.1``. The explorer client talks to the hub
exactly as to a remote API.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EXPLORER_CELL = """\
import mlhub_widgets
mlhub_widgets.explorer()
"""


def find_explorer_notebook() -> Path:
    """The repository's ``notebooks/01-explorer.ipynb``, or a minimal copy in a temp folder."""
    for base in (Path.cwd(), Path(__file__).resolve().parents[1]):
        candidate = base / "notebooks" / "01-explorer.ipynb"
        if candidate.is_file():
            return candidate
    folder = Path(tempfile.mkdtemp(prefix="mlhub-demo-"))
    cell: dict[str, object] = {
        "cell_type": "code",
        "execution_count": None,
        "id": "explorer",
        "metadata": {},
        "outputs": [],
        "source": EXPLORER_CELL,
    }
    kernel = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook = {"cells": [cell], "metadata": {"kernelspec": kernel}, "nbformat": 4}
    notebook["nbformat_minor"] = 5
    path = folder / "01-explorer.ipynb"
    path.write_text(json.dumps(notebook, indent=1), encoding="utf-8")
    return path


def run_demo(*, port: int = 8866, data_dir: str | None = None, voila: bool = True) -> int:
    """Serve the hub and (unless ``voila=False``) the explorer; blocks until Ctrl-C."""
    from .hub import serve

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
        notebook = find_explorer_notebook()
        env = {**os.environ, "MLHUB_ROOT_URL": hub.url}
        cmd = [
            sys.executable,
            "-m",
            "voila",
            notebook.name,
            "--no-browser",
            f"--port={port}",
            "--Voila.ip=127.0.0.1",
        ]
        proc = subprocess.Popen(cmd, cwd=notebook.parent, env=env)
        print(f"Explorer (Voila): http://127.0.0.1:{port}/   — Ctrl-C to stop", flush=True)
        try:
            return proc.wait()
        except KeyboardInterrupt:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
            return 0
