"""Tests of the transfer engine against the bundled hub, over real HTTP on loopback.

A few behaviours the hub cannot produce (chunked and read-until-close bodies, a wrong
``Content-MD5``, a stalled body, a third-party redirect target that records headers) are served
by :class:`TinyServer`, a loopback-only raw HTTP server defined here.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mlhub_widgets.download.transfer import (
    TransferControl,
    TransferEngine,
    TransferOutcome,
    TransferSpec,
    download_file,
    parse_checksum,
)
from mlhub_widgets.hub import FaultConfig, Hub, serve, synth
from mlhub_widgets.hub.sample import DEMO_ID, make_synthetic_dataset, multihash
from mlhub_widgets.net.http import Credentials
from mlhub_widgets.net.settings import NetworkSettings

pytestmark = pytest.mark.timeout(60)

SMALL = "txsmall"  # 400 assets of 1-4 KiB
BIG = "txbig"  # 6 assets of 3 MiB (streamed: above the in-memory body limit)
HUGE = "txhuge"  # 1 asset of 20 MiB (parallel ranges)
SIZES = {
    SMALL: (400, 1024, 4096, "tif"),
    BIG: (6, 3 << 20, 3 << 20, "bin"),
    HUGE: (1, 20 << 20, 20 << 20, "bin"),
}


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    data = tmp_path_factory.mktemp("hubdata")
    for ds, (n, lo, hi, ext) in SIZES.items():
        make_synthetic_dataset(data, ds, n, 1, lo, hi, kinds=(ext,), checksums=False)
    with serve(data) as running:
        yield running


@pytest.fixture(autouse=True)
def _clean_hub(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "hub" in request.fixturenames:
        h: Hub = request.getfixturevalue("hub")
        h.faults = FaultConfig()


def path_of(ds: str, i: int) -> str:
    ext = SIZES[ds][3]
    return f"mlhub/{ds}/{ds}_source/{ds}_{i:07d}/asset_0.{ext}"


def spec_for(
    hub: Hub, ds: str, i: int, out: Path, *, checksum: bool = True, size: bool = True
) -> TransferSpec:
    path = path_of(ds, i)
    url = hub.storage_url + path
    _, lo, hi, _ = SIZES[ds]
    return TransferSpec(
        url,
        out / ds / f"{i}.{SIZES[ds][3]}",
        synth.synthetic_size(0, path, lo, hi) if size else None,
        multihash(hub.asset_bytes(url)) if checksum else None,
        tag=i,
    )


def run(
    engine: TransferEngine,
    specs: Any,
    control: TransferControl | None = None,
    **callbacks: Any,
) -> list[TransferOutcome]:
    outcomes: list[TransferOutcome] = []
    asyncio.run(engine.run(specs, on_outcome=outcomes.append, control=control, **callbacks))
    return outcomes


def assert_identical(hub: Hub, outcomes: list[TransferOutcome]) -> None:
    for o in outcomes:
        assert o.ok, o
        data = o.spec.dest.read_bytes()
        assert data == hub.asset_bytes(o.spec.url), o.spec.dest
        assert o.size == len(data)
        assert not Path(str(o.spec.dest) + ".part").exists()
        assert not Path(str(o.spec.dest) + ".part.meta").exists()


def leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith((".part", ".meta", ".tmp"))]


def fast_engine(**kwargs: Any) -> TransferEngine:
    kwargs.setdefault("backoff", 0.01)
    kwargs.setdefault("workers", 16)
    return TransferEngine(**kwargs)


# ---------------------------------------------------------------------------------------------
# a tiny loopback server for what the hub does not do
# ---------------------------------------------------------------------------------------------
Handler = Callable[[str, dict[str, str], socket.socket], None]


class TinyServer:
    """Raw HTTP/1.1 on 127.0.0.1: ``routes[path](path, headers, sock)`` writes the answer."""

    def __init__(self, routes: dict[str, Handler], ssl_context: Any = None) -> None:
        self.routes = routes
        self.ssl_context = ssl_context
        self.seen: list[tuple[str, dict[str, str]]] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            if self.ssl_context is not None:
                try:
                    conn = self.ssl_context.wrap_socket(conn, server_side=True)
                except OSError:
                    conn.close()
                    continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        buf = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in buf:
                    try:
                        data = conn.recv(65536)
                    except OSError:
                        return
                    if not data:
                        return
                    buf += data
                head, _, buf = buf.partition(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                target = lines[0].split(" ")[1]
                headers = {}
                for line in lines[1:]:
                    k, _, v = line.partition(":")
                    headers[k.strip().lower()] = v.strip()
                self.seen.append((target, headers))
                handler = self.routes.get(target.split("?")[0])
                if handler is None:
                    conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                    continue
                try:
                    handler(target, headers, conn)
                except OSError:
                    return
                if getattr(conn, "_closed", False) or conn.fileno() < 0:
                    return

    def close(self) -> None:
        self._stop = True
        self.sock.close()


@pytest.fixture
def tiny() -> Iterator[Callable[[dict[str, Handler]], TinyServer]]:
    servers: list[TinyServer] = []

    def make(routes: dict[str, Handler]) -> TinyServer:
        srv = TinyServer(routes)
        servers.append(srv)
        return srv

    yield make
    for srv in servers:
        srv.close()


# ---------------------------------------------------------------------------------------------
# the happy path
# ---------------------------------------------------------------------------------------------
def test_small_and_large_files_are_byte_identical(hub: Hub, tmp_path: Path) -> None:
    specs = [spec_for(hub, SMALL, i, tmp_path) for i in range(150)]
    specs += [spec_for(hub, BIG, i, tmp_path) for i in range(2)]
    hub.reset_counters()
    seen_bytes: list[int] = []
    started: list[TransferSpec] = []
    outcomes = run(fast_engine(), specs, on_bytes=seen_bytes.append, on_start=started.append)
    assert len(outcomes) == len(specs)
    assert {o.spec.tag for o in outcomes} == {s.tag for s in specs}
    assert_identical(hub, outcomes)
    assert all(o.status == 200 and o.attempts == 1 and o.retries == 0 for o in outcomes)
    assert all(o.etag and o.last_modified for o in outcomes)
    assert sum(seen_bytes) == sum(s.size or 0 for s in specs)
    assert len(started) == len(specs)
    assert hub.count("asset", "GET") == len(specs)
    assert leftovers(tmp_path) == []


def test_lazy_consumption_of_a_generator(hub: Hub, tmp_path: Path) -> None:
    pulled = 0
    finished = 0
    ahead: list[int] = []

    def gen() -> Iterator[TransferSpec]:
        nonlocal pulled
        for i in range(120):
            pulled += 1
            ahead.append(pulled - finished)
            yield spec_for(hub, SMALL, i, tmp_path, checksum=False)

    def done(o: TransferOutcome) -> None:
        nonlocal finished
        finished += 1

    asyncio.run(fast_engine(workers=8).run(gen(), on_outcome=done))
    assert finished == 120
    assert max(ahead) <= 8  # never more than `workers` specs taken but unfinished


def test_async_iterator_source(hub: Hub, tmp_path: Path) -> None:
    async def agen() -> AsyncIterator[TransferSpec]:
        for i in range(40):
            await asyncio.sleep(0)
            yield spec_for(hub, SMALL, i, tmp_path, checksum=False)

    outcomes = run(fast_engine(workers=8), agen())
    assert len(outcomes) == 40
    assert_identical(hub, outcomes)


# ---------------------------------------------------------------------------------------------
# faults
# ---------------------------------------------------------------------------------------------
def test_faults_are_retried_and_bytes_stay_correct(hub: Hub, tmp_path: Path) -> None:
    specs = [spec_for(hub, SMALL, i, tmp_path) for i in range(200, 400)]
    specs += [spec_for(hub, BIG, i, tmp_path) for i in range(2, 6)]
    hub.faults = FaultConfig(
        error_rate=0.15,
        error_statuses=(500, 502, 503, 504, 429),
        retry_after=0.05,
        drop_rate=0.2,
        short_body_rate=0.2,
        seed=7,
    )
    hub.reset_counters()
    retries: list[tuple[TransferSpec, str, float]] = []
    outcomes = run(
        fast_engine(max_attempts=12), specs, on_retry=lambda s, r, d: retries.append((s, r, d))
    )
    assert len(outcomes) == len(specs)
    assert_identical(hub, outcomes)
    records = [r for r in hub.requests if r.kind == "asset"]
    errors = sum(1 for r in records if r.status >= 500 or r.status == 429)
    total_retries = sum(o.retries for o in outcomes)
    assert errors > 10
    assert total_retries == len(retries) == len(records) - len(specs)
    assert sum(o.attempts for o in outcomes) == len(records)
    reasons = " | ".join(r for _, r, _ in retries)
    assert "HTTP 503" in reasons and "HTTP 429" in reasons and "connection dropped" in reasons
    # Retry-After is honoured for 429/503
    assert any(d == pytest.approx(0.05) for _, r, d in retries if "HTTP 429" in r)
    # big files cut mid-body are resumed with a Range request, not fetched again
    assert any(r.status == 206 for r in records)
    assert any(o.resumed_from > 0 for o in outcomes if o.spec.dest.suffix == ".bin")
    assert leftovers(tmp_path) == []


def test_404_fails_fast_with_one_request(hub: Hub, tmp_path: Path) -> None:
    spec = spec_for(hub, SMALL, 5, tmp_path, checksum=False)
    hub.faults = FaultConfig(missing=frozenset({path_of(SMALL, 5)}), forbidden=frozenset())
    hub.reset_counters()
    [o] = run(fast_engine(backoff=1.0), [spec])
    assert not o.ok and o.permanent and o.status == 404
    assert o.error == "HTTP 404 Not Found"
    assert o.attempts == 1 and o.retries == 0
    assert hub.count("asset", "GET") == 1
    assert not spec.dest.exists() and leftovers(tmp_path) == []


def test_403_is_permanent(hub: Hub, tmp_path: Path) -> None:
    spec = spec_for(hub, SMALL, 6, tmp_path, checksum=False)
    hub.faults = FaultConfig(forbidden=frozenset({path_of(SMALL, 6)}))
    hub.reset_counters()
    [o] = run(fast_engine(), [spec])
    assert not o.ok and o.permanent and o.status == 403 and o.attempts == 1
    assert hub.count("asset", "GET") == 1


def test_retries_are_bounded(hub: Hub, tmp_path: Path) -> None:
    spec = spec_for(hub, SMALL, 7, tmp_path, checksum=False)
    hub.faults = FaultConfig(error_rate=1.0, error_statuses=(503,), retry_after=0.01)
    hub.reset_counters()
    [o] = run(fast_engine(max_attempts=3), [spec])
    assert not o.ok and not o.permanent and o.status == 503
    assert o.attempts == 3 and o.retries == 2
    assert "HTTP 503" in (o.error or "") and "gave up" in (o.error or "")
    assert hub.count("asset", "GET") == 3


def test_retry_after_longer_than_the_budget_gives_up(hub: Hub, tmp_path: Path) -> None:
    spec = spec_for(hub, SMALL, 8, tmp_path, checksum=False)
    hub.faults = FaultConfig(error_rate=1.0, error_statuses=(429,), retry_after=30)
    [o] = run(fast_engine(max_retry_time=5), [spec])
    assert not o.ok and not o.permanent and o.attempts == 1
    assert "Retry-After" in (o.error or "")


def test_retry_waits_do_not_hold_workers(
    tiny: Callable[[dict[str, Handler]], TinyServer], tmp_path: Path
) -> None:
    served: list[str] = []  # the server's log, in the order it answered

    def flaky(target: str, h: dict[str, str], s: socket.socket) -> None:
        served.append("flaky")
        if served.count("flaky") == 1:
            s.sendall(b"HTTP/1.1 503 Busy\r\nRetry-After: 0.4\r\nContent-Length: 0\r\n\r\n")
        else:
            s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    def good(target: str, h: dict[str, str], s: socket.socket) -> None:
        served.append("good")
        s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ngood")

    srv = tiny({"/flaky": flaky, "/good": good})
    specs = [TransferSpec(f"{srv.url}/flaky", tmp_path / "flaky", tag="flaky")]
    specs += [TransferSpec(f"{srv.url}/good?{i}", tmp_path / f"g{i}", tag=i) for i in range(20)]
    outcomes = run(fast_engine(workers=1), specs)
    assert all(o.ok for o in outcomes) and (tmp_path / "flaky").read_bytes() == b"ok"
    # with one worker, other files went through while the retry waited its 0.4 s (a wait that
    # held the worker would put the two flaky requests side by side)
    first, second = (i for i, what in enumerate(served) if what == "flaky")
    assert second - first > 1, served


# ---------------------------------------------------------------------------------------------
# resume
# ---------------------------------------------------------------------------------------------
def _interrupted_part(hub: Hub, spec: TransferSpec, keep: int) -> dict[str, Any]:
    """Lay out ``spec.dest.part`` as an interrupted download would: bytes + validator."""
    [o] = run(fast_engine(), [spec])
    assert o.ok
    data = spec.dest.read_bytes()
    spec.dest.unlink()
    part = Path(str(spec.dest) + ".part")
    part.write_bytes(data[:keep])
    meta = {"url": spec.url, "etag": o.etag, "last_modified": o.last_modified, "size": len(data)}
    Path(str(part) + ".meta").write_text(json.dumps(meta))
    return meta


def test_resume_uses_range_and_reuses_bytes(hub: Hub, tmp_path: Path) -> None:
    spec = spec_for(hub, BIG, 0, tmp_path)
    _interrupted_part(hub, spec, 1_000_000)
    hub.reset_counters()
    got: list[int] = []
    [o] = run(fast_engine(), [spec], on_bytes=got.append)
    assert o.ok and o.status == 206 and o.resumed_from == 1_000_000
    assert sum(got) == (3 << 20) - 1_000_000
    assert [r.status for r in hub.requests] == [206]
    assert_identical(hub, [o])


def test_small_file_resume(hub: Hub, tmp_path: Path) -> None:
    spec = spec_for(hub, SMALL, 20, tmp_path)
    _interrupted_part(hub, spec, 1000)
    hub.reset_counters()
    [o] = run(fast_engine(), [spec])
    assert o.ok and o.status == 206 and o.resumed_from == 1000
    assert_identical(hub, [o])


def test_complete_part_is_finished_without_a_body(hub: Hub, tmp_path: Path) -> None:
    spec = spec_for(hub, BIG, 1, tmp_path)
    _interrupted_part(hub, spec, 3 << 20)  # killed between the last write and the rename
    hub.reset_counters()
    [o] = run(fast_engine(), [spec])
    assert o.ok and o.status == 416 and o.resumed_from == 3 << 20
    assert_identical(hub, [o])


def test_remote_change_between_interrupt_and_resume_restarts(hub: Hub, tmp_path: Path) -> None:
    spec = spec_for(hub, BIG, 5, tmp_path, checksum=False)
    old = hub.asset_bytes(spec.url)
    _interrupted_part(hub, spec, 2_000_000)
    hub.change_asset(spec.url)
    new = hub.asset_bytes(spec.url)
    assert new != old and len(new) == len(old)
    hub.reset_counters()
    [o] = run(fast_engine(), [spec])
    assert o.ok and o.status == 200 and o.resumed_from == 0
    assert spec.dest.read_bytes() == new  # never old[:2_000_000] + new[2_000_000:]
    assert [r.status for r in hub.requests] == [200]


def test_part_without_validator_restarts_from_zero(hub: Hub, tmp_path: Path) -> None:
    spec = spec_for(hub, SMALL, 21, tmp_path)
    spec.dest.parent.mkdir(parents=True, exist_ok=True)
    Path(str(spec.dest) + ".part").write_bytes(b"garbage" * 100)  # no .meta
    hub.reset_counters()
    [o] = run(fast_engine(), [spec])
    assert o.ok and o.status == 200 and o.resumed_from == 0
    assert_identical(hub, [o])


def test_resume_after_sigkill(hub: Hub, tmp_path: Path) -> None:
    spec = spec_for(hub, BIG, 3, tmp_path)
    hub.faults = FaultConfig(bandwidth_bps=4 << 20, scope="assets")
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from mlhub_widgets.download.transfer import download_file\n"
        "download_file(sys.argv[1], Path(sys.argv[2]), size=int(sys.argv[3]))\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, spec.url, str(spec.dest), str(spec.size)],
    )
    part = Path(str(spec.dest) + ".part")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if part.exists() and part.stat().st_size > 1 << 20:
            break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    hub.faults = FaultConfig()
    kept = part.stat().st_size
    assert 0 < kept < 3 << 20
    assert not spec.dest.exists()
    assert json.loads(Path(str(part) + ".meta").read_text())["url"] == spec.url
    [o] = run(fast_engine(), [spec])
    assert o.ok and o.resumed_from == kept and o.status == 206
    assert_identical(hub, [o])


def test_server_without_ranges(hub: Hub, tmp_path: Path) -> None:
    specs = [spec_for(hub, BIG, 4, tmp_path), spec_for(hub, SMALL, 22, tmp_path)]
    _interrupted_part(hub, specs[0], 1_500_000)
    hub.faults = FaultConfig(no_ranges=True, drop_rate=0.3, seed=3)
    hub.reset_counters()
    outcomes = run(fast_engine(max_attempts=20), specs)
    assert_identical(hub, outcomes)
    assert all(r.status in (200,) for r in hub.requests)
    assert all(o.resumed_from == 0 for o in outcomes)


# ---------------------------------------------------------------------------------------------
# verification
# ---------------------------------------------------------------------------------------------
def test_checksum_mismatch_is_detected(hub: Hub, tmp_path: Path) -> None:
    good = spec_for(hub, SMALL, 30, tmp_path)
    bad = TransferSpec(good.url, good.dest, good.size, "1220" + "00" * 32)
    big = spec_for(hub, BIG, 0, tmp_path / "big")
    bad_big = TransferSpec(big.url, big.dest, big.size, "d50110" + "ab" * 16)
    hub.reset_counters()
    outcomes = run(fast_engine(max_attempts=8), [bad, bad_big])
    for o in outcomes:
        assert not o.ok and o.permanent
        assert o.error is not None and o.error.startswith("checksum mismatch")
        assert o.attempts == 3  # retried from scratch, then given up
        assert not o.spec.dest.exists()
    assert leftovers(tmp_path) == []


def test_size_mismatch_is_detected(hub: Hub, tmp_path: Path) -> None:
    good = spec_for(hub, SMALL, 31, tmp_path, checksum=False)
    bad = TransferSpec(good.url, good.dest, (good.size or 0) + 1)
    [o] = run(fast_engine(), [bad])
    assert not o.ok and o.permanent and "size mismatch" in (o.error or "")
    assert not bad.dest.exists() and leftovers(tmp_path) == []


def test_parse_checksum() -> None:
    digest = hashlib.sha256(b"x").digest()
    assert parse_checksum("1220" + digest.hex()) == ("sha256", digest)
    md5 = hashlib.md5(b"x").digest()
    assert parse_checksum("d50110" + md5.hex()) == ("md5", md5)
    assert parse_checksum(md5.hex()) == ("md5", md5)
    assert parse_checksum(digest.hex()) == ("sha256", digest)
    sha512 = hashlib.sha512(b"x").digest()
    assert parse_checksum("1340" + sha512.hex()) == ("sha512", sha512)
    with pytest.raises(ValueError):
        parse_checksum("zz")


# ---------------------------------------------------------------------------------------------
# if_exists
# ---------------------------------------------------------------------------------------------
def test_if_exists_modes(hub: Hub, tmp_path: Path) -> None:
    specs = [spec_for(hub, SMALL, i, tmp_path) for i in range(40, 60)]
    run(fast_engine(), specs)
    wrong = specs[0]
    wrong.dest.write_bytes(b"short")  # size no longer matches
    hub.reset_counters()
    outcomes = run(fast_engine(if_exists="resume"), specs)
    assert all(o.ok for o in outcomes)
    assert hub.count() == 1  # only the file with the wrong size
    assert_identical(hub, outcomes)

    wrong.dest.write_bytes(b"short")
    hub.reset_counters()
    outcomes = run(fast_engine(if_exists="skip"), specs)
    assert all(o.ok and o.attempts == 0 and o.status is None for o in outcomes)
    assert hub.count() == 0 and wrong.dest.read_bytes() == b"short"

    hub.reset_counters()
    outcomes = run(fast_engine(if_exists="overwrite"), specs)
    assert hub.count("asset", "GET") == len(specs)
    assert_identical(hub, outcomes)

    # unknown size: an existing file counts as done in "resume" mode
    nosize = [TransferSpec(s.url, s.dest) for s in specs]
    hub.reset_counters()
    assert all(o.ok for o in run(fast_engine(), nosize)) and hub.count() == 0
    with pytest.raises(ValueError):
        TransferEngine(if_exists="sometimes")


# ---------------------------------------------------------------------------------------------
# pause / cancel
# ---------------------------------------------------------------------------------------------
def test_pause_resume_and_cancel(hub: Hub, tmp_path: Path) -> None:
    small = [spec_for(hub, SMALL, i, tmp_path, checksum=False) for i in range(60, 160)]
    hub.faults = FaultConfig(latency_ms=20)
    control = TransferControl()
    started: list[TransferSpec] = []
    outcomes: list[TransferOutcome] = []
    changed = threading.Condition()  # notified on every start and outcome (the loop's thread)
    problems: list[str] = []

    def on_start(spec: TransferSpec) -> None:
        with changed:
            started.append(spec)
            changed.notify_all()

    def on_outcome(o: TransferOutcome) -> None:
        with changed:
            outcomes.append(o)
            if len(outcomes) == 10:
                control.pause()
            changed.notify_all()

    def driver() -> None:
        try:
            with changed:  # paused, and the transfers that were running have ended
                drained = changed.wait_for(
                    lambda: len(outcomes) >= 10 and len(started) == len(outcomes), 30
                )
                if not drained:
                    problems.append(f"not drained: {len(started)} started, {len(outcomes)} ended")
                    return
                paused_at = len(started)
            # the behaviour under test: a pause holds; 0.3 s is the window it is watched in
            time.sleep(0.3)
            if len(started) != paused_at:
                problems.append(f"{len(started) - paused_at} transfers started while paused")
            control.resume()
            with changed:
                if not changed.wait_for(lambda: len(outcomes) >= 40, 30):
                    problems.append(f"only {len(outcomes)} outcomes after resume")
        finally:
            control.cancel()

    thread = threading.Thread(target=driver)
    thread.start()
    asyncio.run(
        fast_engine(workers=4).run(small, on_outcome=on_outcome, on_start=on_start, control=control)
    )
    thread.join()
    assert not problems
    assert 40 <= len(outcomes) < len(small)
    assert control.cancelled and repr(control) == "<TransferControl cancelled>"
    assert all(o.ok for o in outcomes)


def test_cancel_keeps_parts_for_resume(hub: Hub, tmp_path: Path) -> None:
    specs = [spec_for(hub, BIG, i, tmp_path) for i in range(0, 3)]
    hub.faults = FaultConfig(bandwidth_bps=2 << 20)
    control = TransferControl()
    got = 0

    def on_bytes(n: int) -> None:
        nonlocal got
        got += n
        if got > 1 << 20:
            control.cancel()

    t0 = time.monotonic()
    outcomes = run(fast_engine(chunk_size=256 << 10), specs, control=control, on_bytes=on_bytes)
    assert time.monotonic() - t0 < 5
    assert outcomes == []  # cancelled transfers report nothing
    parts = sorted(tmp_path.rglob("*.part"))
    assert parts and all(Path(str(p) + ".meta").exists() for p in parts)
    assert not any(s.dest.exists() for s in specs)
    hub.faults = FaultConfig()
    outcomes = run(fast_engine(), specs)
    assert_identical(hub, outcomes)
    assert sum(o.resumed_from for o in outcomes) > 0


def test_cancel_before_start_returns_at_once(hub: Hub, tmp_path: Path) -> None:
    control = TransferControl()
    control.cancel()
    hub.reset_counters()
    assert run(fast_engine(), [spec_for(hub, SMALL, 1, tmp_path)], control=control) == []
    assert hub.count() == 0


# ---------------------------------------------------------------------------------------------
# disk full
# ---------------------------------------------------------------------------------------------
@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (needs root): {proc.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_disk_full_is_permanent_and_leaves_nothing(
    hub: Hub, tiny_disk: Path, tmp_path: Path
) -> None:
    big = spec_for(hub, BIG, 2, tiny_disk, checksum=False)
    small = spec_for(hub, SMALL, 70, tiny_disk, checksum=False)
    filler = tiny_disk / "filler"
    filler.write_bytes(b"\0" * (60 << 10))  # leave ~4 KiB: not enough for most small files
    outcomes = {o.spec.tag: o for o in run(fast_engine(), [big, small])}
    o = outcomes[2]
    assert not o.ok and o.permanent
    assert o.error == f"disk full writing {big.dest} (needs 3.1 MB)"
    assert not big.dest.exists() and not Path(str(big.dest) + ".part").exists()
    assert leftovers(tiny_disk) == []
    filler.unlink()
    outcomes = {o.spec.tag: o for o in run(fast_engine(), [small])}
    assert outcomes[70].ok


def test_disk_full_on_small_file(hub: Hub, tiny_disk: Path) -> None:
    specs = [spec_for(hub, SMALL, i, tiny_disk, checksum=False) for i in range(80, 90)]
    (tiny_disk / "filler").write_bytes(b"\0" * ((64 << 10) - 4096))
    outcomes = run(fast_engine(workers=1), specs)
    failed = [o for o in outcomes if not o.ok]
    assert failed, "the disk should have filled up"
    for o in failed:
        assert o.permanent and o.error is not None and o.error.startswith("disk full writing ")
        assert "(needs " in o.error
    for o in outcomes:
        if o.ok:
            assert o.spec.dest.read_bytes() == hub.asset_bytes(o.spec.url)
    assert leftovers(tiny_disk) == []


def test_unwritable_destination_is_permanent(hub: Hub, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    spec = TransferSpec(hub.storage_url + path_of(SMALL, 1), blocker / "sub" / "a.tif")
    [o] = run(fast_engine(), [spec])
    assert not o.ok and o.permanent and "cannot write" in (o.error or "")


# ---------------------------------------------------------------------------------------------
# redirects, keys, headers
# ---------------------------------------------------------------------------------------------
def test_redirect_to_other_origin_drops_the_key(tmp_path: Path) -> None:
    with serve(require_key="SECRET-KEY-123") as keyed:
        ds = DEMO_ID
        url = f"{keyed.url}catalog/{ds}?key=SECRET-KEY-123"
        o = download_file(
            url,
            tmp_path / "cat.tar.gz",
            headers={"Authorization": "Bearer SECRET-KEY-123", "X-Trace": "1"},
            backoff=0.01,
        )
        assert o.ok, o
        blob = f"{keyed.storage_url}mlhub/catalogs/{ds}.tar.gz"
        with urllib.request.urlopen(blob) as fh:  # an independent client as the reference
            assert (tmp_path / "cat.tar.gz").read_bytes() == fh.read()
        keyed.reset_counters()
        assert "SECRET" not in repr(o)
        keyed.reset_counters()
        o = download_file(url, tmp_path / "cat2.tar.gz", headers={"Authorization": "Bearer x"})
        assert o.ok
        assert keyed.keys_seen("api") == 1
        assert keyed.keys_seen("storage") == 0
        assert [r.status for r in keyed.requests] == [303, 200]


def test_redirect_headers_and_limits(tiny: Callable[[dict[str, Handler]], TinyServer]) -> None:
    def body(target: str, h: dict[str, str], s: socket.socket) -> None:
        s.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nETag: "e"\r\n\r\nhello')

    other = tiny({"/file": body})

    def hop(target: str, h: dict[str, str], s: socket.socket) -> None:
        loc = f"{other.url}/file?key=abc&x=1"
        s.sendall(f"HTTP/1.1 302 Found\r\nLocation: {loc}\r\nContent-Length: 0\r\n\r\n".encode())

    def loop(target: str, h: dict[str, str], s: socket.socket) -> None:
        s.sendall(b"HTTP/1.1 301 Moved\r\nLocation: /loop\r\nContent-Length: 0\r\n\r\n")

    first = tiny({"/start": hop, "/loop": loop})
    engine = fast_engine(
        credentials=[
            Credentials.for_url(
                first.url, headers={"Authorization": "Bearer t0k3n", "X-Extra": "yes"}
            )
        ]
    )
    with_key = TransferSpec(f"{first.url}/start?key=abc", Path("/nonexistent/never"))
    outcomes: list[TransferOutcome] = []

    async def main(tmp: Path) -> None:
        spec = TransferSpec(with_key.url, tmp / "f.txt")
        looping = TransferSpec(f"{first.url}/loop", tmp / "l.txt")
        await engine.run([spec, looping], on_outcome=outcomes.append)

    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(main(Path(tmp)))
        by_name = {o.spec.dest.name: o for o in outcomes}
        assert by_name["f.txt"].ok and (Path(tmp) / "f.txt").read_bytes() == b"hello"
        loop_o = by_name["l.txt"]
        assert not loop_o.ok and loop_o.permanent and "redirect loop" in (loop_o.error or "")
    assert first.seen[0][1]["authorization"] == "Bearer t0k3n"
    target, headers = other.seen[0]
    assert target == "/file?x=1"  # key removed on the other origin
    assert "authorization" not in headers and "x-extra" not in headers  # the origin's only
    assert headers["accept-encoding"] == "identity"


# ---------------------------------------------------------------------------------------------
# HTTP details the hub does not exercise
# ---------------------------------------------------------------------------------------------
def test_chunked_eof_and_connection_close_bodies(
    tiny: Callable[[dict[str, Handler]], TinyServer], tmp_path: Path
) -> None:
    payload = os.urandom(700_000)

    def chunked(target: str, h: dict[str, str], s: socket.socket) -> None:
        s.sendall(b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nETag: "c"\r\n\r\n')
        pos = 0
        sizes = [1, 17, 4096, 65536, 300_000]
        i = 0
        while pos < len(payload):
            n = min(sizes[i % len(sizes)], len(payload) - pos)
            s.sendall(b"%x;ext=1\r\n" % n + payload[pos : pos + n] + b"\r\n")
            pos += n
            i += 1
        s.sendall(b"0\r\nX-Trailer: 1\r\n\r\n")

    def small_chunked(target: str, h: dict[str, str], s: socket.socket) -> None:
        s.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")

    def until_close(target: str, h: dict[str, str], s: socket.socket) -> None:
        s.sendall(b"HTTP/1.0 200 OK\r\n\r\n" + payload)
        s.shutdown(socket.SHUT_RDWR)
        s.close()

    def close_after(target: str, h: dict[str, str], s: socket.socket) -> None:
        s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc")
        s.close()

    def interim(target: str, h: dict[str, str], s: socket.socket) -> None:
        s.sendall(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    srv = tiny(
        {
            "/chunked": chunked,
            "/small": small_chunked,
            "/eof": until_close,
            "/close": close_after,
            "/interim": interim,
        }
    )
    digest = "1220" + hashlib.sha256(payload).hexdigest()
    specs = [
        TransferSpec(f"{srv.url}/chunked", tmp_path / "chunked", len(payload), digest),
        TransferSpec(f"{srv.url}/small", tmp_path / "small"),
        TransferSpec(f"{srv.url}/eof", tmp_path / "eof", len(payload), digest),
        TransferSpec(f"{srv.url}/close", tmp_path / "close"),
        TransferSpec(f"{srv.url}/interim", tmp_path / "interim"),
    ]
    outcomes = run(fast_engine(chunk_size=64 << 10), specs * 1)
    assert all(o.ok for o in outcomes), outcomes
    assert (tmp_path / "chunked").read_bytes() == payload
    assert (tmp_path / "small").read_bytes() == b"hello"
    assert (tmp_path / "eof").read_bytes() == payload
    assert (tmp_path / "close").read_bytes() == b"abc"
    assert (tmp_path / "interim").read_bytes() == b"ok"


def test_content_md5_mismatch(
    tiny: Callable[[dict[str, Handler]], TinyServer], tmp_path: Path
) -> None:
    wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    right = base64.b64encode(hashlib.md5(b"data").digest()).decode()

    def bad(target: str, h: dict[str, str], s: socket.socket) -> None:
        s.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nContent-MD5: {wrong}\r\n\r\n".encode())
        s.sendall(b"data")

    def good(target: str, h: dict[str, str], s: socket.socket) -> None:
        s.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nContent-MD5: {right}\r\n\r\n".encode())
        s.sendall(b"data")

    srv = tiny({"/bad": bad, "/good": good})
    specs = [
        TransferSpec(f"{srv.url}/bad", tmp_path / "bad"),
        TransferSpec(f"{srv.url}/good", tmp_path / "good"),
    ]
    outcomes = run(fast_engine(), specs)
    by = {o.spec.dest.name: o for o in outcomes}
    assert not by["bad"].ok and by["bad"].error == "Content-MD5 mismatch"
    assert by["good"].ok and (tmp_path / "good").read_bytes() == b"data"


def test_read_timeout_is_retried_then_reported(
    tiny: Callable[[dict[str, Handler]], TinyServer], tmp_path: Path
) -> None:
    def stall(target: str, h: dict[str, str], s: socket.socket) -> None:
        s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\npartial")
        time.sleep(3)  # the behaviour under test: a server that stalls mid-body

    srv = tiny({"/stall": stall})
    t0 = time.monotonic()
    spec = TransferSpec(f"{srv.url}/stall", tmp_path / "s")
    [o] = run(fast_engine(read_timeout=0.2, max_attempts=2), [spec])
    assert time.monotonic() - t0 < 2.5
    assert not o.ok and not o.permanent and o.attempts == 2
    assert "for 0.2s (read timeout)" in (o.error or "")


def test_connection_refused_is_retried(tmp_path: Path) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    [o] = run(
        fast_engine(max_attempts=2), [TransferSpec(f"http://127.0.0.1:{port}/x", tmp_path / "x")]
    )
    assert not o.ok and not o.permanent and o.attempts == 2
    assert "connection refused" in (o.error or "")


# ---------------------------------------------------------------------------------------------
# download_file
# ---------------------------------------------------------------------------------------------
def test_download_file_parallel_ranges(hub: Hub, tmp_path: Path) -> None:
    spec = spec_for(hub, HUGE, 0, tmp_path)
    hub.reset_counters()
    got: list[int] = []
    o = download_file(
        spec.url, spec.dest, size=spec.size, checksum=spec.checksum, parallel_ranges=4,
        on_bytes=got.append,
    )  # fmt: skip
    assert o.ok, o
    assert_identical(hub, [o])
    statuses = [r.status for r in hub.requests]
    assert statuses.count(206) >= 4 and 200 not in statuses
    assert sum(got) == 20 << 20


def test_download_file_parallel_ranges_resume_and_change(hub: Hub, tmp_path: Path) -> None:
    spec = spec_for(hub, HUGE, 0, tmp_path, checksum=False)
    hub.faults = FaultConfig(bandwidth_bps=8 << 20)
    control = TransferControl()
    seen = 0

    def on_bytes(n: int) -> None:
        nonlocal seen
        seen += n
        if seen > 4 << 20:
            control.cancel()

    o = download_file(
        spec.url, spec.dest, size=spec.size, parallel_ranges=4, on_bytes=on_bytes,
        control=control, chunk_size=256 << 10,
    )  # fmt: skip
    assert not o.ok and o.error == "cancelled"
    meta = json.loads(Path(str(spec.dest) + ".part.meta").read_text())
    assert meta["ranges"] and meta["size"] == 20 << 20
    hub.faults = FaultConfig()
    hub.reset_counters()
    o = download_file(spec.url, spec.dest, size=spec.size, parallel_ranges=4)
    assert o.ok and o.resumed_from > 0
    assert_identical(hub, [o])

    # interrupted again, then the remote file changes: restart from scratch, no splicing
    spec.dest.unlink()
    hub.faults = FaultConfig(bandwidth_bps=8 << 20)
    control = TransferControl()
    seen = 0
    o = download_file(
        spec.url, spec.dest, size=spec.size, parallel_ranges=4, on_bytes=on_bytes,
        control=control, chunk_size=256 << 10,
    )  # fmt: skip
    assert not o.ok
    hub.faults = FaultConfig()
    hub.change_asset(spec.url)
    o = download_file(spec.url, spec.dest, size=spec.size, parallel_ranges=4)
    assert o.ok and o.resumed_from == 0
    assert spec.dest.read_bytes() == hub.asset_bytes(spec.url)


def test_download_file_without_range_support(hub: Hub, tmp_path: Path) -> None:
    spec = spec_for(hub, HUGE, 0, tmp_path)
    hub.faults = FaultConfig(no_ranges=True)
    hub.reset_counters()
    o = download_file(spec.url, spec.dest, checksum=spec.checksum, parallel_ranges=4)
    assert o.ok and o.status == 200
    assert_identical(hub, [o])
    assert hub.count("asset", "GET") == 1


def test_download_file_from_a_running_loop(hub: Hub, tmp_path: Path) -> None:
    spec = spec_for(hub, SMALL, 90, tmp_path)

    async def inside() -> TransferOutcome:
        return download_file(spec.url, spec.dest, checksum=spec.checksum)  # e.g. in Jupyter

    o = asyncio.run(inside())
    assert o.ok and spec.dest.read_bytes() == hub.asset_bytes(spec.url)


def test_engine_errors_never_show_keys(tmp_path: Path) -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    o = download_file(f"http://127.0.0.1:{port}/x?key=TOPSECRET", tmp_path / "x", max_attempts=1)
    assert not o.ok and "TOPSECRET" not in repr(o.error)


# ---------------------------------------------------------------------------------------------
# TLS, callbacks
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("tls")
    key, crt = d / "key.pem", d / "cert.pem"
    proc = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(crt)],
        capture_output=True,
    )  # fmt: skip
    if proc.returncode != 0:
        pytest.skip(f"openssl cannot make a test certificate: {proc.stderr.decode()[:200]}")
    return key, crt


def test_https_download_and_untrusted_certificate(cert: tuple[Path, Path], tmp_path: Path) -> None:
    import ssl

    key, crt = cert
    payload = os.urandom(600_000)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(crt, key)

    def handler(target: str, h: dict[str, str], s: socket.socket) -> None:
        body = payload if target == "/big" else b"tiny"
        s.sendall(b'HTTP/1.1 200 OK\r\nETag: "t"\r\nContent-Length: %d\r\n\r\n' % len(body) + body)

    srv = TinyServer({"/big": handler, "/small": handler}, ssl_context=server_ctx)
    try:
        base = srv.url.replace("http://", "https://")
        specs = [
            TransferSpec(f"{base}/big", tmp_path / "big", len(payload)),
            TransferSpec(f"{base}/small", tmp_path / "small"),
        ]
        engine = fast_engine(network=NetworkSettings(verify=str(crt)))
        outcomes = run(engine, specs)
        assert all(o.ok for o in outcomes), outcomes
        assert (tmp_path / "big").read_bytes() == payload
        assert (tmp_path / "small").read_bytes() == b"tiny"
        # the default trust store does not know this certificate: permanent, no retries
        [o] = run(fast_engine(), [TransferSpec(f"{base}/small", tmp_path / "again")])
        assert not o.ok and o.permanent and o.attempts == 1
        assert "certificate verify failed" in (o.error or "")
    finally:
        srv.close()


def test_callback_exceptions_propagate(hub: Hub, tmp_path: Path) -> None:
    specs = [spec_for(hub, SMALL, i, tmp_path, checksum=False) for i in range(100, 130)]

    def boom(o: TransferOutcome) -> None:
        raise RuntimeError("caller bug")

    with pytest.raises(RuntimeError, match="caller bug"):
        asyncio.run(fast_engine().run(specs, on_outcome=boom))

    def bytes_boom(n: int) -> None:
        raise ValueError("bytes bug")

    big = [spec_for(hub, BIG, 0, tmp_path / "b", checksum=False)]
    for which in (specs, big):
        with pytest.raises(ValueError, match="bytes bug"):
            asyncio.run(fast_engine().run(which, on_outcome=lambda o: None, on_bytes=bytes_boom))
    assert not any(p.name.endswith(".tmp") for p in leftovers(tmp_path))


def test_one_connection_is_reused_across_streamed_and_small_bodies(
    hub: Hub, tmp_path: Path
) -> None:
    specs = []
    for i in range(3):
        specs += [spec_for(hub, BIG, i, tmp_path), spec_for(hub, SMALL, 300 + i, tmp_path)]
    hub.reset_counters()
    outcomes = run(fast_engine(workers=1, chunk_size=256 << 10), specs)
    assert_identical(hub, outcomes)
    assert len({r.connection for r in hub.requests}) == 1  # keep-alive all along


def test_disk_threads_write_small_files_on_one_lane_and_slices_on_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Small files go to the first disk thread only (fewer threads fighting for the GIL);
    slices of large files to whichever is free; closing drains both lanes and stops the
    threads, and they start again for a later call."""
    from mlhub_widgets.download.transfer import disk as disk_module

    ran_on: dict[str, set[str]] = {"small": set(), "slice": set()}
    gate = threading.Barrier(2, timeout=10)
    write_small = disk_module.write_small

    def recording_write_small(*args: Any) -> Any:
        ran_on["small"].add(threading.current_thread().name)
        return write_small(*args)

    def a_slice(i: int) -> int:
        ran_on["slice"].add(threading.current_thread().name)
        if i < 2:
            gate.wait()  # the first two slices can only finish together: on two threads
        return i

    def disk_threads() -> list[str]:
        return [t.name for t in threading.enumerate() if t.name.startswith("mlhub-disk-")]

    async def two_rounds() -> None:
        disk = disk_module._DiskWorkers(asyncio.get_running_loop())
        for round_ in range(2):  # the second round runs on threads started again
            small = [
                disk.write_small(
                    (
                        str(tmp_path / f"f{round_}-{i}.part"),
                        str(tmp_path / f"f{round_}-{i}.bin"),
                        b"x" * i,
                        None,
                        None,
                        None,
                    )
                )
                for i in range(50)
            ]
            slices = [disk.submit(a_slice, i) for i in range(6)]
            assert await asyncio.gather(*small) == [None] * 50
            assert await asyncio.gather(*slices) == list(range(6))
            disk.close()
            assert disk_threads() == []

    monkeypatch.setattr(disk_module, "write_small", recording_write_small)
    asyncio.run(two_rounds())
    assert ran_on["small"] == {"mlhub-disk-0"}
    assert ran_on["slice"] == {"mlhub-disk-0", "mlhub-disk-1"}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"f{r}-{i}.bin" for r in range(2) for i in range(50)
    )
    assert (tmp_path / "f1-7.bin").read_bytes() == b"x" * 7
