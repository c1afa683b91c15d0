"""Helpers for the browser tests: Voila on loopback, headless Chromium, offline routing.

Built on shared/recipes/browser-widget-test (proven offline on this machine): Voila serves a
notebook on a free 127.0.0.1 port with private Jupyter dirs; Chromium (Debian's, through the
Playwright Python package) loads it; every non-loopback request is aborted so runs never wait on
DNS; Voila and its kernels run in their own process group and are stopped by that group.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

CHROMIUM = os.environ.get("MLHUB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Anything that is not loopback (Voila's CDN font CSS, OSM tiles) is aborted.
NON_LOOPBACK = re.compile(r"^(?!https?://(127\.0\.0\.1|localhost)[:/]).*")
BLANK = re.compile(r"^\s*$")


def wait_until_empty(locator: Any, timeout_ms: float = 30_000) -> None:
    """Wait until ``locator`` shows no text (a status line cleared by a later widget update).

    Fails with Playwright's message, which quotes the text still shown, after ``timeout_ms``.
    """
    from playwright.sync_api import expect

    expect(locator).to_have_text(BLANK, timeout=timeout_ms)


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for_port(port: int, proc: subprocess.Popen[Any], timeout: float = 60) -> None:
    """Poll a TCP connect (a GET would make Voila start a kernel)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"voila exited early with code {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"voila did not listen on {port} within {timeout}s")


def jupyter_env(root: Path) -> dict[str, str]:
    """The environment with private Jupyter config/data/runtime dirs under ``root``."""
    env = dict(os.environ)
    for name in ("CONFIG", "DATA", "RUNTIME"):
        path = root / name.lower()
        path.mkdir(parents=True, exist_ok=True)
        env[f"JUPYTER_{name}_DIR"] = str(path)
    env["JUPYTER_PLATFORM_DIRS"] = "1"
    env["IPYTHONDIR"] = str(root / "ipython")
    env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
    return env


def _stop(proc: subprocess.Popen[Any], log: IO[str]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)  # jupyter_server shuts its kernels down on TERM
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
    log.close()
    for _ in range(50):
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    raise RuntimeError("voila left processes behind in its group")


@contextmanager
def server_process(
    cmd: Sequence[str], cwd: Path, env: Mapping[str, str], log_path: Path, port: int
) -> Iterator[subprocess.Popen[Any]]:
    """Run a server command (Voila, JupyterLab...) in its own process group until it listens
    on ``port``; yields the process, then stops the whole group (kernels included)."""
    log = open(log_path, "w")  # noqa: SIM115  (closed by _stop)
    proc = subprocess.Popen(
        list(cmd),
        cwd=cwd,
        env=dict(env),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for_port(port, proc)
        yield proc
    finally:
        _stop(proc, log)


@contextmanager
def voila(
    notebook: Path, env: Mapping[str, str], log_path: Path, extra_args: Sequence[str] = ()
) -> Iterator[str]:
    """Serve ``notebook`` as ``mlhub demo`` does (the explorer app's Voila launcher: kernels
    freed on page unload, idle ones culled) on loopback; yields the page URL.

    ``extra_args`` go to Voila's command line (e.g. ``["--theme=dark"]``).
    """
    from mlhub_widgets.widgets.voila_app import voila_command

    port = free_port()
    cmd = voila_command(notebook, port=port, extra=["--show_tracebacks=True", *extra_args])
    with server_process(cmd, notebook.parent, env, log_path, port):
        yield f"http://127.0.0.1:{port}/"


def kernel_processes(server_pid: int) -> list[Any]:
    """The ipykernel processes a server (Voila, Jupyter) started, as ``psutil.Process``."""
    import psutil

    out = []
    for child in psutil.Process(server_pid).children(recursive=True):
        try:
            if "ipykernel" in " ".join(child.cmdline()):
                out.append(child)
        except psutil.NoSuchProcess:
            continue
    return out


# -- accessibility checks run in the page ---------------------------------------------------------

#: ``(root) => {checked, bad}``: every visible text node (and text field) under ``root`` whose
#: contrast against its effective background is below WCAG AA (4.5, or 3 for large text: ≥ 24 px, or
#: ≥ 18.66 px and bold). The background is the first opaque ``background-color`` walking up the
#: ancestors, with the translucent ones in between composited over it; ``opacity`` of the
#: ancestors fades the text. Disabled controls are exempt (as in WCAG). Colours of any CSS
#: syntax are read through a 1×1 canvas.
CONTRAST_JS = r"""
(root) => {
  const ctx = Object.assign(document.createElement('canvas'), {width: 1, height: 1})
    .getContext('2d', {willReadFrequently: true});
  const cache = new Map();
  const rgba = (c) => {
    if (cache.has(c)) return cache.get(c);
    let out;
    const num = '\\s*([\\d.]+)';
    const m = c.match(new RegExp(`^rgba?\\(${num},?${num},?${num}(?:\\s*[,/]${num}(%?))?\\s*\\)$`));
    if (m) {
      const a = m[4] === undefined ? 1 : parseFloat(m[4]) / (m[5] ? 100 : 1);
      out = [+m[1], +m[2], +m[3], a];
    } else {
      ctx.clearRect(0, 0, 1, 1);
      ctx.fillStyle = '#000';
      ctx.fillStyle = c;
      ctx.fillRect(0, 0, 1, 1);
      const d = ctx.getImageData(0, 0, 1, 1).data;
      out = [d[0], d[1], d[2], d[3] / 255];
    }
    cache.set(c, out);
    return out;
  };
  const over = (top, bottom) => {
    const a = top[3] + bottom[3] * (1 - top[3]);
    if (a === 0) return [0, 0, 0, 0];
    const mix = (i) => (top[i] * top[3] + bottom[i] * bottom[3] * (1 - top[3])) / a;
    return [mix(0), mix(1), mix(2), a];
  };
  const background = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = rgba(getComputedStyle(e).backgroundColor);
      if (c[3] > 0) {
        layers.push(c);
        if (c[3] >= 1) break;
      }
    }
    let bg = [255, 255, 255, 1];  // the canvas of the page
    for (const layer of layers.reverse()) bg = over(layer, bg);
    return bg;
  };
  const lum = (c) => {
    const ch = c.slice(0, 3).map((v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * ch[0] + 0.7152 * ch[1] + 0.0722 * ch[2];
  };
  const ratio = (a, b) => {
    const [x, y] = [lum(a), lum(b)];
    return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05);
  };
  const hex = (c) => '#' + c.slice(0, 3)
    .map((v) => Math.round(v).toString(16).padStart(2, '0')).join('');
  const where = (el) => {
    const hook = el.closest('[class*="mlhub-"]');
    const own = (e) => [...e.classList].filter((c) => c.startsWith('mlhub-'));
    const cls = (e, keep) => e.tagName.toLowerCase() + keep.map((c) => '.' + c).join('');
    return (hook && hook !== el ? cls(hook, own(hook)) + ' … ' : '') +
      cls(el, [...el.classList].slice(0, 3));
  };
  const check = (el, text, bad, seen) => {
    if (seen.has(el)) return;
    seen.add(el);
    if (el.closest(':disabled, [disabled], .mod-disabled, [aria-hidden="true"]')) return;
    if (!el.checkVisibility({checkOpacity: true, checkVisibilityCSS: true})) return;
    const cs = getComputedStyle(el);
    let fg = rgba(cs.color);
    let fade = 1;
    for (let e = el; e; e = e.parentElement) fade *= parseFloat(getComputedStyle(e).opacity);
    const bg = background(el);
    fg = over([fg[0], fg[1], fg[2], fg[3] * fade], bg);
    const size = parseFloat(cs.fontSize);
    const large = size >= 24 || (size >= 18.66 && parseInt(cs.fontWeight, 10) >= 700);
    const need = large ? 3 : 4.5;
    const r = ratio(fg, bg);
    if (r < need) {
      bad.push({where: where(el), text: text.slice(0, 50), ratio: Math.round(r * 100) / 100,
                need, color: hex(fg), background: hex(bg)});
    }
  };
  const bad = [];
  const seen = new Set();
  let checked = 0;
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const text = n.textContent.trim();
    if (!text || !n.parentElement) continue;
    const range = document.createRange();
    range.selectNodeContents(n);
    const rect = range.getBoundingClientRect();
    if (rect.width <= 1 || rect.height <= 1) continue;  // also the 1 px "sr-only" text
    checked += 1;
    const box = n.parentElement.getBoundingClientRect();
    if (box.width <= 1 || box.height <= 1) continue;
    check(n.parentElement, text, bad, seen);
  }
  const fields = 'input:not([type=checkbox]):not([type=radio]):not([type=file])' +
    ':not([type=hidden]), select, textarea';
  for (const el of root.querySelectorAll(fields)) {
    if (el.getBoundingClientRect().width < 1) continue;
    checked += 1;
    check(el, el.value || el.placeholder || '(' + el.tagName.toLowerCase() + ')', bad, seen);
  }
  return {checked, bad};
}
"""

#: ``(root) => {checked, missing}``: the ``input``, ``select``, ``textarea`` and ``button`` under
#: ``root`` (also in tabs not shown) with no accessible name: no ``aria-labelledby`` text,
#: ``aria-label``, ``<label for>``/wrapping label text, ``title`` or (buttons) visible text.
#: Elements that are themselves ``display: none`` or ``type=hidden`` are not operable and skipped.
UNLABELLED_JS = r"""
(root) => {
  const text = (e) => (e ? (e.innerText || e.textContent || '').trim() : '');
  const name = (el) => {
    const by = (el.getAttribute('aria-labelledby') || '').split(/\s+/).filter(Boolean)
      .map((id) => text(document.getElementById(id))).join(' ').trim();
    if (by) return by;
    if ((el.getAttribute('aria-label') || '').trim()) return el.getAttribute('aria-label').trim();
    for (const label of el.labels || []) if (text(label)) return text(label);
    if ((el.getAttribute('title') || '').trim()) return el.getAttribute('title').trim();
    if (el.tagName === 'BUTTON' && (el.textContent || '').trim()) return el.textContent.trim();
    if (el.tagName === 'INPUT' && ['button', 'submit', 'reset'].includes(el.type) && el.value) {
      return el.value;
    }
    return '';
  };
  const missing = [];
  let checked = 0;
  for (const el of root.querySelectorAll('input, select, textarea, button')) {
    if (el.type === 'hidden' || getComputedStyle(el).display === 'none') continue;
    checked += 1;
    if (name(el)) continue;
    const hook = el.closest('[class*="mlhub-"]');
    missing.push(el.tagName.toLowerCase() + (el.type ? '[type=' + el.type + ']' : '') +
      (el.className ? '.' + String(el.className).trim().split(/\s+/).join('.') : '') +
      (hook ? ' in .' + [...hook.classList].filter((c) => c.startsWith('mlhub-')).join('.') : ''));
  }
  return {checked, missing};
}
"""

#: ``() => str``: a short description of ``document.activeElement`` (tag, classes, text).
ACTIVE_JS = r"""
() => {
  const el = document.activeElement;
  if (!el) return '';
  const label = (el.getAttribute('aria-label') || el.textContent || el.value || '').trim();
  return el.tagName.toLowerCase() + '.' + [...el.classList].join('.') + ' ' + label.slice(0, 60);
}
"""


#: ``(root) => [problems]``: what a narrow explorer must not do, in the tab shown: a tab title
#: cut, a control or text sticking out of the explorer, a button whose label is clipped, the
#: results table wider than its box (columns falling off), a table cell clipped vertically.
LAYOUT_JS = r"""
(root) => {
  const box = root.getBoundingClientRect();
  const name = (el) => el.tagName.toLowerCase() + [...el.classList].filter(
    (c) => c.startsWith('mlhub-') || c.startsWith('widget-')).map((c) => '.' + c).join('') +
    ' ' + JSON.stringify((el.innerText || el.value || el.placeholder || '').trim().slice(0, 40));
  const shown = (el) => el.checkVisibility({checkOpacity: true, checkVisibilityCSS: true}) &&
    el.getBoundingClientRect().width > 0;
  const out = [];
  for (const label of root.querySelectorAll('.mlhub-tabs > .lm-TabBar .lm-TabBar-tabLabel')) {
    if (label.scrollWidth > label.clientWidth + 1) out.push('tab title cut: ' + name(label));
    if (label.getBoundingClientRect().right > box.right + 1) out.push('tab off: ' + name(label));
  }
  const fields = 'input:not([type=hidden]), select, textarea, button, .widget-html, ' +
    '.widget-label, .widget-inline-hbox, .widget-upload';
  for (const el of root.querySelectorAll(fields)) {
    if (!shown(el)) continue;
    const r = el.getBoundingClientRect();
    if (r.right > box.right + 1 || r.left < box.left - 1) out.push('sticks out: ' + name(el));
  }
  for (const b of root.querySelectorAll('button')) {
    if (shown(b) && b.scrollWidth > b.clientWidth + 1) out.push('label clipped: ' + name(b));
  }
  for (const wrap of root.querySelectorAll('.mlhub-table-wrap')) {
    if (shown(wrap) && wrap.scrollWidth > wrap.clientWidth + 1) {
      out.push(`results wider than their box: ${wrap.scrollWidth} > ${wrap.clientWidth}`);
    }
  }
  for (const cell of root.querySelectorAll('.mlhub-results .mlhub-cell')) {
    if (shown(cell) && cell.scrollHeight > cell.clientHeight + 1) {
      out.push('cell clipped: ' + name(cell));
    }
  }
  return out;
}
"""


def _luminance(rgb: tuple[int, int, int]) -> float:
    def channel(v: int) -> float:
        c = v / 255
        return c / 12.92 if c <= 0.03928 else float(((c + 0.055) / 1.055) ** 2.4)

    r, g, b = (channel(v) for v in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def icon_contrast(png: bytes) -> float:
    """Non-text contrast (WCAG 1.4.11) of an icon button from its screenshot: the contrast
    between the button's face (its most common colour) and the icon (the strokes: the 80th
    percentile of the pixels that differ from the face), as a ratio ≥ 1."""
    import io
    from collections import Counter

    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    pixels = list(image.get_flattened_data())
    face = Counter(pixels).most_common(1)[0][0]
    face_l = _luminance(face)

    def ratio(p: tuple[int, int, int]) -> float:
        a, b = sorted((face_l, _luminance(p)))
        return (b + 0.05) / (a + 0.05)

    ratios = sorted(r for r in (ratio(p) for p in pixels) if r > 1.15)
    if not ratios:
        return 1.0
    return ratios[int(len(ratios) * 0.8)]
