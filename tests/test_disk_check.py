"""The re-run's check of files recorded as done (mlhub_widgets.download.disk_check), on real
files: every missing or changed file is found, and a folder's stamp vouches for its files
only while the folder's entries are unchanged."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mlhub_widgets.download import disk_check
from mlhub_widgets.download.disk_check import check_done_files, check_files
from mlhub_widgets.download.manifest import DONE, Manifest, NewAsset, Outcome

pytestmark = pytest.mark.skipif(not disk_check.STAMPS, reason="folder stamps are POSIX only")


def _tree(base: Path, folders: int = 30, per_folder: int = 3) -> list[tuple[int, str, int]]:
    """Files ``c/item_NN/f_K.bin`` of K + 10 bytes; returns their (id, path, size) rows."""
    rows = []
    for i in range(folders):
        for k in range(per_folder):
            rel = f"c/item_{i:02d}/f_{k}.bin"
            (base / rel).parent.mkdir(parents=True, exist_ok=True)
            (base / rel).write_bytes(b"x" * (k + 10))
            rows.append((len(rows) + 1, rel, k + 10))
    return rows


class _Stamps:
    """What the index would keep between runs (here: a dict)."""

    def __init__(self) -> None:
        self.kept: dict[str, list[int]] = {}
        self.staged: dict[str, set[tuple[int, int, int]]] = {}

    def of(self, batch: list[tuple[int, str, int]]) -> dict[str, list[int]]:
        folders = {rel.rpartition("/")[0] for _i, rel, _s in batch}
        return {f: self.kept[f] for f in folders if f in self.kept}

    def stage(self, rows: list[tuple[int, str, int, int, int]]) -> None:
        for _first, folder, ino, mtime, ctime in rows:
            self.staged.setdefault(folder, set()).add((ino, mtime, ctime))

    def keep(self) -> None:
        """After the check, as the index does: the stamps every task agreed on."""
        for folder, seen in self.staged.items():
            if len(seen) == 1:
                self.kept[folder] = list(next(iter(seen)))
        self.staged = {}


def _check(base: Path, rows: list[tuple[int, str, int]], stamps: _Stamps) -> disk_check.CheckResult:
    batches = [rows[i : i + 7] for i in range(0, len(rows), 7)]  # folders across batches

    def load(batch: list[tuple[int, str, int]]) -> disk_check.Load:
        return lambda: disk_check.Loaded.of_rows(batch, stamps.of(batch))

    result = check_files(base, [load(b) for b in batches], keep_stamps=stamps.stage, threads=4)
    stamps.keep()
    return result


@pytest.mark.parametrize("cache", ["warm", "cold"])
def test_every_missing_or_changed_file_is_found_without_stamps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cache: str
) -> None:
    """Whether the files are checked by the calling thread (a warm cache) or by the pool's
    threads (once a check is slow, as with a cold cache), every change is found."""
    if cache == "cold":
        monkeypatch.setattr(disk_check, "COLD_STAT_NS", -1)
    rows = _tree(tmp_path)
    (tmp_path / rows[4][1]).unlink()  # deleted
    (tmp_path / rows[10][1]).write_bytes(b"short")  # another size
    os.remove(tmp_path / rows[20][1])
    (tmp_path / rows[20][1]).mkdir()  # a folder where a file was
    for name in os.listdir(tmp_path / "c/item_09"):
        os.remove(tmp_path / "c/item_09" / name)
    os.rmdir(tmp_path / "c/item_09")  # a whole item folder gone
    result = _check(tmp_path, rows, _Stamps())
    gone = {r[0] for r in rows if r[1].startswith("c/item_09/")}
    assert set(result.changed) == {rows[4][0], rows[10][0], rows[20][0]} | gone
    assert result.trusted == 0
    nowhere = tmp_path / "nowhere"
    missing = check_files(
        nowhere,
        [
            lambda: disk_check.Loaded.of_rows(rows[:5], {}),
            lambda: disk_check.Loaded.of_rows(rows[5:9], {}),
        ],
    )
    assert missing.changed == [r[0] for r in rows[:9]]


def test_a_stamp_vouches_for_its_folder_until_an_entry_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(disk_check, "STAMP_MIN_AGE_NS", 0)
    rows = _tree(tmp_path)
    stamps = _Stamps()
    first = _check(tmp_path, rows, stamps)
    assert first.changed == [] and first.trusted == 0
    assert set(stamps.kept) == {f"c/item_{i:02d}" for i in range(30)}
    again = _check(tmp_path, rows, stamps)
    assert again.changed == [] and again.trusted == len(rows)
    # a deletion, a rename, an addition and a replacement each change their folder's stamp
    (tmp_path / "c/item_03/f_1.bin").unlink()
    os.rename(tmp_path / "c/item_05/f_0.bin", tmp_path / "c/item_05/moved.bin")
    (tmp_path / "c/item_07/new.txt").write_text("hello")
    (tmp_path / "c/item_08/tmp").write_bytes(b"y" * 99)
    os.replace(tmp_path / "c/item_08/tmp", tmp_path / "c/item_08/f_2.bin")
    third = _check(tmp_path, rows, stamps)
    ids = {r[1]: r[0] for r in rows}
    assert set(third.changed) == {
        ids["c/item_03/f_1.bin"],
        ids["c/item_05/f_0.bin"],
        ids["c/item_08/f_2.bin"],
    }
    assert third.trusted == len(rows) - 4 * 3  # the four changed folders: each file looked at
    # what a stamp cannot see: a file rewritten in place in a folder that did not change
    with open(tmp_path / "c/item_12/f_0.bin", "r+b") as fh:
        fh.truncate(1)
    assert sorted(_check(tmp_path, rows, stamps).changed) == sorted(third.changed)


def test_a_folder_that_changed_just_before_the_check_gets_no_stamp(tmp_path: Path) -> None:
    rows = _tree(tmp_path, folders=3)
    stamps = _Stamps()
    assert _check(tmp_path, rows, stamps).changed == []
    assert stamps.kept == {}  # changed less than STAMP_MIN_AGE_NS ago: no stamp


def _asset(rel: str) -> NewAsset:
    return NewAsset(rel, f"http://s/{rel}", "c", rel.split("/")[1], None, "a", None, None,
                    None, True)  # fmt: skip


def test_the_index_keeps_stamps_only_after_marking_missing_files_pending(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the index: a re-run marks missing files pending, keeps its stamps, and the
    next re-run trusts the unchanged folders; a folder staged with two stamps is not kept."""
    monkeypatch.setattr(disk_check, "STAMP_MIN_AGE_NS", 0)
    base = tmp_path / "ds"
    rows = _tree(base, folders=20, per_folder=2)
    with Manifest(base / "mlhub_assets.db") as db:
        gen = db.begin_rebuild()
        seq = iter(range(1, 1000))
        with db.transaction():
            db.add_assets([_asset(rel) for _i, rel, _s in rows], gen, lambda: next(seq))
        db.finish_rebuild(gen, {}, {})
        ids = {r.path: r.id for r in db.iter_rows()}
        db.record([Outcome(ids[rel], DONE, size) for _i, rel, size in rows])
        (base / "c/item_04/f_0.bin").unlink()
        first = check_done_files(db, base)
        assert first.changed == [ids["c/item_04/f_0.bin"]]
        assert db.counts()["done"] == 39
        stamped = _kept(db)
        assert len(stamped) == 19 and "c/item_04" not in stamped  # not whole: no stamp
        second = check_done_files(db, base)
        assert second.changed == [] and second.trusted == 38  # item_04's other file: looked at
        # a folder seen with two different stamps in one check (it changed meanwhile) keeps
        # the stamp it had; one seen twice the same gets it, under its lowest row id
        before = _kept(db)
        db.stage_folder_stamps([(3, "c/item_01", 1, 2, 3), (4, "c/item_01", 1, 2, 4)])
        db.stage_folder_stamps([(6, "c/item_02", 5, 6, 7), (5, "c/item_02", 5, 6, 7)])
        assert db.keep_folder_stamps() == 1
        after = _kept(db)
        assert after["c/item_01"] == before["c/item_01"]
        assert after["c/item_02"] == (5, 5, 6, 7)


def _kept(db: Manifest) -> dict[str, tuple[int, int, int, int]]:
    """The stamps in the index: ``{folder: (first id, ino, mtime_ns, ctime_ns)}``."""
    rows = db._db.execute("SELECT path, first_id, ino, mtime_ns, ctime_ns FROM folder_stamps")
    return {path: (first, ino, mtime, ctime) for path, first, ino, mtime, ctime in rows}
