"""Tests of :mod:`mlhub_widgets.download.transfer.file_writer`: small files verified and written
by a helper process, and the transfer engine's use of it (real processes, real files, the
bundled hub)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlhub_widgets.download.transfer import (
    TransferEngine,
    TransferOutcome,
    TransferSpec,
    file_writer,
)
from mlhub_widgets.download.transfer import disk as transfer
from mlhub_widgets.download.transfer.file_writer import WriteArgs, WriterProcess, write_small
from mlhub_widgets.hub import Hub, serve, synth
from mlhub_widgets.hub.sample import make_synthetic_dataset, multihash

from .reliability_support import child_outlives_killed_parent

pytestmark = pytest.mark.timeout(60)

DS = "fwsmall"
N_ASSETS = 120


def sha256(body: bytes) -> tuple[str, bytes]:
    return "sha256", hashlib.sha256(body).digest()


def leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith((".part", ".meta"))]


# ---------------------------------------------------------------------------------------------
# write_small, the function both the helper and the threads run
def test_write_small_writes_verified_bytes_and_creates_folders(tmp_path: Path) -> None:
    dest = tmp_path / "new" / "folder" / "a.tif"
    meta = tmp_path / "a.tif.part.meta"
    meta.write_text("{}")
    body = os.urandom(3000)
    assert write_small(f"{dest}.part", str(dest), body, str(meta), sha256(body), None) is None
    assert dest.read_bytes() == body
    assert not meta.exists() and leftovers(tmp_path) == []


def test_write_small_writes_nothing_on_a_mismatch(tmp_path: Path) -> None:
    dest = tmp_path / "a.tif"
    body = b"x" * 100
    result = write_small(f"{dest}.part", str(dest), body, None, sha256(b"other"), None)
    assert result == ("mismatch", 0, "checksum mismatch (sha2-256)")
    bad_md5 = write_small(f"{dest}.part", str(dest), body, None, None, "AAAAAAAAAAAAAAAAAAAAAA==")
    assert bad_md5 == ("mismatch", 0, "Content-MD5 mismatch")
    assert list(tmp_path.iterdir()) == []


def test_write_small_reports_a_failed_move_and_cleans_up(tmp_path: Path) -> None:
    dest = tmp_path / "taken"
    (dest / "inside").mkdir(parents=True)  # a non-empty folder holds the final name
    result = write_small(f"{dest}.part", str(dest), b"abc", None, None, None)
    assert result is not None and result[0] == "move" and result[1] != 0
    assert leftovers(tmp_path) == [] and dest.is_dir()


# ---------------------------------------------------------------------------------------------
# the helper process on its own
def _cases(root: Path) -> list[WriteArgs]:
    """60 files, some that must not verify and one whose final name is taken by a folder."""
    cases: list[WriteArgs] = []
    for i in range(60):
        body = (hashlib.sha256(str(i).encode()).digest() * 200)[: 500 + 37 * i]
        dest = root / f"d{i % 7}" / f"f{i}.bin"
        expected = sha256(body) if i % 13 else sha256(b"something else")
        cases.append((f"{dest}.part", str(dest), body, None, expected, None))
    (root / "d1" / "f1.bin" / "x").mkdir(parents=True)
    return cases


def _thread_fallback(loop: asyncio.AbstractEventLoop, calls: list[WriteArgs]) -> Any:
    def fallback(args: WriteArgs) -> asyncio.Future[file_writer.Failure]:
        calls.append(args)
        return loop.run_in_executor(None, write_small, *args)

    return fallback


def test_helper_process_writes_exactly_what_the_function_writes(tmp_path: Path) -> None:
    in_helper, here = tmp_path / "helper", tmp_path / "here"
    expected = [write_small(*args) for args in _cases(here)]
    fallback_calls: list[WriteArgs] = []

    async def main() -> tuple[list[file_writer.Failure], int]:
        loop = asyncio.get_running_loop()
        writer = WriterProcess.spawn(loop, _thread_fallback(loop, fallback_calls))
        try:
            results = await asyncio.gather(*(writer.submit(a) for a in _cases(in_helper)))
            return list(results), writer._proc.pid
        finally:
            writer.close()

    results, pid = asyncio.run(main())
    assert pid != os.getpid()
    assert fallback_calls == []
    assert results == expected
    assert sum(r is None for r in results) == 60 - 5 - 1  # 5 mismatches, 1 taken name
    for path in here.rglob("*"):
        twin = in_helper / path.relative_to(here)
        assert twin.exists()
        if path.is_file():
            assert twin.read_bytes() == path.read_bytes()
    assert leftovers(tmp_path) == []
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # reaped by close()


@pytest.mark.parametrize("when", ["before", "with requests waiting"])
def test_a_dead_helper_hands_its_files_to_the_fallback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, when: str
) -> None:
    cases = _cases(tmp_path / "out")
    expected = [write_small(*a) for a in _cases(tmp_path / "ref")]
    fallback_calls: list[WriteArgs] = []
    caplog.set_level(logging.WARNING, logger="mlhub_widgets.download.transfer.file_writer")

    async def main() -> list[file_writer.Failure]:
        loop = asyncio.get_running_loop()
        writer = WriterProcess.spawn(loop, _thread_fallback(loop, fallback_calls))
        pid = writer._proc.pid
        try:
            if when == "before":
                os.kill(pid, signal.SIGKILL)
                writer._proc.wait()
                futures = [writer.submit(a) for a in cases]
            else:
                os.kill(pid, signal.SIGSTOP)  # it takes the requests but answers none
                futures = [writer.submit(a) for a in cases]
                await asyncio.sleep(0.2)
                os.kill(pid, signal.SIGKILL)
            return list(await asyncio.wait_for(asyncio.gather(*futures), 20))
        finally:
            writer.close()

    results = asyncio.run(main())
    assert results == expected
    assert len(fallback_calls) == len(cases)
    assert "file-writer process stopped" in caplog.text
    for args, result in zip(cases, results, strict=True):
        if result is None:
            assert Path(args[1]).read_bytes() == args[2]
    assert leftovers(tmp_path) == []


def test_closing_with_files_in_flight_leaves_only_complete_files(tmp_path: Path) -> None:
    cases = _cases(tmp_path / "out")

    async def main() -> tuple[list[asyncio.Future[file_writer.Failure]], WriterProcess]:
        loop = asyncio.get_running_loop()
        writer = WriterProcess.spawn(loop, _thread_fallback(loop, []))
        futures = [writer.submit(a) for a in cases]
        await asyncio.sleep(0)  # the batch goes out; the helper is still busy with it
        writer.close()
        return futures, writer

    futures, writer = asyncio.run(main())
    assert writer._proc.returncode == 0
    assert all(f.done() for f in futures)
    for args in cases:
        dest = Path(args[1])
        if dest.is_file():
            assert dest.read_bytes() == args[2]
    assert leftovers(tmp_path) == []


@pytest.mark.skipif(os.name == "nt", reason="POSIX signals")
def test_closing_a_stuck_helper_kills_it_after_the_timeout(tmp_path: Path) -> None:
    async def main() -> tuple[list[asyncio.Future[file_writer.Failure]], WriterProcess]:
        loop = asyncio.get_running_loop()
        writer = WriterProcess.spawn(loop, _thread_fallback(loop, []))
        os.kill(writer._proc.pid, signal.SIGSTOP)
        futures = [writer.submit(a) for a in _cases(tmp_path)[:5]]
        await asyncio.sleep(0.05)
        started = time.monotonic()
        writer.close(timeout=0.5)
        assert time.monotonic() - started < 5
        return futures, writer

    futures, writer = asyncio.run(main())
    assert all(f.cancelled() for f in futures)
    assert writer._proc.returncode == -signal.SIGKILL


# ---------------------------------------------------------------------------------------------
# the transfer engine with the helper
@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    data = tmp_path_factory.mktemp("hubdata")
    make_synthetic_dataset(data, DS, N_ASSETS, 1, 1024, 4096, kinds=("tif",), checksums=False)
    with serve(data) as running:
        yield running


def _specs(hub: Hub, out: Path) -> list[TransferSpec]:
    specs = []
    for i in range(N_ASSETS):
        path = f"mlhub/{DS}/{DS}_source/{DS}_{i:07d}/asset_0.tif"
        url = hub.storage_url + path
        body = hub.asset_bytes(url)
        assert len(body) == synth.synthetic_size(0, path, 1024, 4096)
        specs.append(
            TransferSpec(url, out / f"item{i}" / "asset_0.tif", len(body), multihash(body))
        )
    return specs


def _run(specs: list[TransferSpec]) -> list[TransferOutcome]:
    outcomes: list[TransferOutcome] = []
    engine = TransferEngine(workers=16, backoff=0.01)
    asyncio.run(engine.run(specs, on_outcome=outcomes.append))
    return outcomes


def _children() -> set[str]:
    kids: set[str] = set()
    for tid in os.listdir("/proc/self/task"):
        kids.update(Path(f"/proc/self/task/{tid}/children").read_text().split())
    return kids


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_engine_writes_small_files_in_the_helper_and_ends_it(
    hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spawned: list[WriterProcess] = []
    real_spawn = WriterProcess.spawn

    def spy(*args: Any) -> WriterProcess:
        writer = real_spawn(*args)
        spawned.append(writer)
        return writer

    monkeypatch.setattr(WriterProcess, "spawn", spy)
    before = _children()
    outcomes = _run(_specs(hub, tmp_path))
    assert len(spawned) == 1  # one helper for the run, started after the first few files
    assert spawned[0]._proc.returncode == 0
    assert _children() == before
    assert all(o.ok for o in outcomes) and len(outcomes) == N_ASSETS
    for o in outcomes:
        assert Path(o.spec.dest).read_bytes() == hub.asset_bytes(o.spec.url)
    assert leftovers(tmp_path) == []


def test_engine_falls_back_to_threads_when_no_helper_can_start(
    hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def refuse(*_args: Any) -> WriterProcess:
        raise OSError("no processes here")

    monkeypatch.setattr(WriterProcess, "spawn", refuse)
    caplog.set_level(logging.INFO, logger="mlhub_widgets.download.transfer")
    specs = _specs(hub, tmp_path)
    specs[5] = TransferSpec(specs[5].url, specs[5].dest, specs[5].size, "1220" + "00" * 32)
    outcomes = {o.spec.dest: o for o in _run(specs)}
    assert "writing small files in threads: no processes here" in caplog.text
    for spec in specs:
        o, dest = outcomes[spec.dest], Path(spec.dest)
        if spec is specs[5]:
            assert not o.ok and (o.error or "").startswith("checksum mismatch")
            assert not dest.exists()
        else:
            assert o.ok and dest.read_bytes() == hub.asset_bytes(spec.url)
    assert leftovers(tmp_path) == []
    assert transfer.WRITER_PROCESS_AFTER < N_ASSETS  # the helper would have been used


PARENT = r"""
import asyncio, sys, time
from mlhub_widgets.download.transfer.file_writer import WriterProcess

async def main():
    loop = asyncio.get_running_loop()
    writer = WriterProcess.spawn(loop, None)
    print(writer._proc.pid, flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


@pytest.mark.skipif(os.name == "nt", reason="POSIX signals")
def test_a_killed_parent_leaves_no_helper_behind() -> None:
    if child_outlives_killed_parent(PARENT, 10):
        pytest.fail("the helper outlived its parent by 10 s")
