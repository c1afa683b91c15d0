"""The SQLite asset index (mlhub_widgets.download.manifest)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from mlhub_widgets.download.manifest import DONE, FAILED, PENDING, Manifest, NewAsset, Outcome


def _asset(path: str, url: str, item_ref: int | None, key: str, selected: bool) -> NewAsset:
    return NewAsset(path, url, "c", None if item_ref is None else f"i{item_ref}", item_ref, key,
                    None, 10, None, selected)  # fmt: skip


class _Seq:
    def __init__(self) -> None:
        self.n = 0

    def __call__(self) -> int:
        self.n += 1
        return self.n


def _build(db: Manifest, assets: list[NewAsset], items: int = 3) -> tuple[int, list]:
    gen = db.begin_rebuild()
    seq = _Seq()
    with db.transaction():
        db.add_items([(i, "c", f"i{i}", "{}", 1) for i in range(1, items + 1)])
        collisions = db.add_assets(assets, gen, seq)
    db.finish_rebuild(gen, {("c", "a"): 1}, {"c": items})
    return gen, collisions


def test_common_assets_deduplicated_and_collisions_recorded(tmp_path: Path) -> None:
    with Manifest(tmp_path / "m.db") as db:
        _, collisions = _build(
            db,
            [
                _asset("c/_common/doc.pdf", "http://s/doc.pdf", 1, "documentation", False),
                _asset("c/_common/doc.pdf", "http://s/doc.pdf", 2, "documentation", True),
                _asset("c/_common/doc.pdf", "http://s/other.pdf", 3, "documentation", False),
                _asset("c/i1/a.tif", "http://s/1.tif", 1, "a", True),
            ],
        )
        assert [(a.url, old) for a, old in collisions] == [
            ("http://s/other.pdf", "http://s/doc.pdf")
        ]
        assert db.collisions() == 1
        rows = {r.path: r for r in db.iter_rows(selected=False)}
        assert set(rows) == {"c/_common/doc.pdf", "c/i1/a.tif"}
        # a later selected reference selects the shared row, with a new sequence number
        assert rows["c/_common/doc.pdf"].url == "http://s/doc.pdf"
        assert [r.path for r in db.rows_after(0, 10)] == ["c/i1/a.tif", "c/_common/doc.pdf"]
        assert db.counts()["selected"] == 2


def test_rebuild_keeps_transfer_state_unless_the_asset_changed(tmp_path: Path) -> None:
    with Manifest(tmp_path / "m.db") as db:
        _build(
            db,
            [
                _asset("c/i1/a.tif", "http://s/1.tif", 1, "a", True),
                _asset("c/i2/a.tif", "http://s/2.tif", 2, "a", True),
                _asset("c/i3/a.tif", "http://s/3.tif", 3, "a", True),
            ],
        )
        ids = {r.path: r.id for r in db.iter_rows()}
        db.record(
            [
                Outcome(ids["c/i1/a.tif"], DONE, 10, etag='"e1"'),
                Outcome(ids["c/i2/a.tif"], DONE, 10),
                Outcome(ids["c/i3/a.tif"], FAILED, 0, status=404, error="gone"),
            ]
        )
        # the new catalogue: i1 unchanged, i2 moved to another URL, i3 dropped
        _build(
            db,
            [
                _asset("c/i1/a.tif", "http://s/1.tif", 1, "a", True),
                _asset("c/i2/a.tif", "http://s/2-new.tif", 2, "a", True),
            ],
        )
        state = {r.path: r.state for r in db.iter_rows(selected=False)}
        assert state == {"c/i1/a.tif": DONE, "c/i2/a.tif": PENDING}


def test_reselect_from_stored_items(tmp_path: Path) -> None:
    with Manifest(tmp_path / "m.db") as db:
        _build(
            db,
            [
                _asset("c/i1/a.tif", "http://s/1.tif", 1, "a", True),
                _asset("c/i2/a.tif", "http://s/2.tif", 2, "a", True),
                _asset("c/_common/d.pdf", "http://s/d.pdf", 1, "documentation", True),
                _asset("c/_common/d.pdf", "http://s/d.pdf", 2, "documentation", True),
                _asset("c/coll.csv", "http://s/c.csv", None, "meta", True),
            ],
        )
        with db.transaction():
            db.set_item_matches([(0, 1), (1, 2)])
            db.reselect([("c", "a"), ("c", "documentation"), ("c", "meta")])
        selected = {r.path for r in db.iter_rows()}
        # item 1 excluded; the shared PDF stays (item 2 references it); collection assets stay
        assert selected == {"c/i2/a.tif", "c/_common/d.pdf", "c/coll.csv"}
        with db.transaction():
            db.set_item_matches([(0, 2)])
            db.reselect([("c", "a"), ("c", "documentation")])
        assert {r.path for r in db.iter_rows()} == set()


def test_meta_and_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    with Manifest(path) as db:
        db.set_meta({"catalog": {"size": 3, "etag": None}, "filter": "x"})
        assert db.get_meta_json("catalog") == {"size": 3, "etag": None}
        assert db.get_meta("filter") == "x"
    import sqlite3

    with sqlite3.connect(path) as con:
        con.execute("PRAGMA user_version=99")
    with Manifest(path) as db:  # an index from another version is a cache: rebuilt
        assert db.get_meta("filter") is None


def test_full_database_rolls_back_cleanly_and_keeps_working(tmp_path: Path) -> None:
    """SQLITE_FULL (here from a page limit, as on a full disk) raises the real error, never
    "cannot rollback - no transaction is active", and leaves the index as it was."""
    import sqlite3

    import pytest

    with Manifest(tmp_path / "m.db") as db:
        _build(db, [_asset("c/i1/a.tif", "http://s/1.tif", 1, "a", True)])
        pages = db._db.execute("PRAGMA page_count").fetchone()[0]
        db._db.execute(f"PRAGMA max_page_count={pages}")
        big = [(i + 100, "c", f"i{i}", "x" * 4000, 1) for i in range(50)]
        with pytest.raises(sqlite3.OperationalError, match="full"), db.transaction():
            db.add_items(big)
        assert not db._db.in_transaction
        assert db.item_count() == 3
        db.record([Outcome(1, DONE, 10)])  # small writes still fit
        assert db.counts()["done"] == 1
    # an existing index opens without writing (it must open on a full disk)
    with Manifest(tmp_path / "m.db") as db:
        assert db.counts()["done"] == 1


def _scanned(db: Manifest) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    """counts() and per_collection() computed by scanning the assets table (independently of
    the totals the index keeps)."""
    con = db._db
    row = con.execute(
        """SELECT count(*), coalesce(sum(state = 1), 0), coalesce(sum(state = 2), 0),
                  coalesce(sum(CASE WHEN state = 1 THEN bytes ELSE 0 END), 0),
                  coalesce(sum(size), 0), count(size)
           FROM assets WHERE selected = 1"""
    ).fetchone()
    selected, done, failed, done_bytes, known, sized = row
    total = con.execute("SELECT count(*) FROM assets").fetchone()[0]
    counts = {
        "selected": selected,
        "done": done,
        "failed": failed,
        "pending": selected - done - failed,
        "done_bytes": done_bytes,
        "known_bytes": known,
        "sized": sized,
        "assets": total,
    }
    per = {
        cid: {"assets": n, "bytes": b, "sized": s, "done": d, "failed": f}
        for cid, n, b, s, d, f in con.execute(
            """SELECT collection_id, count(*), coalesce(sum(size), 0), count(size),
                      coalesce(sum(state = 1), 0), coalesce(sum(state = 2), 0)
               FROM assets WHERE selected = 1 GROUP BY collection_id ORDER BY 1"""
        )
    }
    return counts, per


def _assert_totals(db: Manifest) -> None:
    counts, per = _scanned(db)
    assert db.counts() == counts
    assert db.per_collection() == per


def _mixed(i: int, selected: bool = True, url: str = "http://s/") -> NewAsset:
    """Assets of three collections, some without a known size."""
    cid = ("a", "b", "c")[i % 3]
    size = None if i % 4 == 0 else 100 + i
    return NewAsset(f"{cid}/i{i}/x.tif", f"{url}{i}.tif", cid, f"i{i}", i, "x", None, size,
                    None, selected)  # fmt: skip


def test_counts_stay_equal_to_a_scan_through_every_kind_of_write(tmp_path: Path) -> None:
    """The per-collection totals the index keeps (so that a re-run does not scan a million
    rows) equal a scan after a build, outcomes, files found missing, a re-plan, a rebuild
    that drops and changes assets, and a reset of every row."""
    with Manifest(tmp_path / "m.db") as db:
        gen = db.begin_rebuild()
        seq = _Seq()
        with db.transaction():
            db.add_items([(i, ("a", "b", "c")[i % 3], f"i{i}", "{}", 1) for i in range(60)])
            db.add_assets([_mixed(i, selected=i % 5 != 0) for i in range(60)], gen, seq)
        db.finish_rebuild(gen, {("a", "x"): 20, ("b", "x"): 20, ("c", "x"): 20}, {})
        _assert_totals(db)
        assert db.counts()["selected"] == 48 and db.counts()["assets"] == 60
        ids = [r.id for r in db.iter_rows()]
        db.record([Outcome(i, DONE, 1000 + i) for i in ids[:30]])
        db.record([Outcome(i, FAILED, 0, status=404, error="gone") for i in ids[30:40]])
        _assert_totals(db)
        assert db.counts()["done"] == 30 and db.counts()["failed"] == 10
        db.record([Outcome(ids[30], DONE, 7)])  # a failed asset retried with success
        db.mark_pending(ids[:5])  # files found missing
        _assert_totals(db)
        with db.transaction():  # a re-plan: only items with an even id match
            db.set_item_matches([(int(i % 2 == 0), i) for i in range(60)])
            db.reselect([("a", "x"), ("c", "x")])
        _assert_totals(db)
        assert set(db.per_collection()) == {"a", "c"}
        # a rebuild: 20 assets gone, 10 at a new URL (back to pending), 5 new ones, one
        # moved to another collection under the same path
        gen = db.begin_rebuild()
        with db.transaction():
            kept = [_mixed(i) for i in range(20, 48)] + [_mixed(49)]
            kept.append(dataclasses.replace(_mixed(48), collection_id="b"))
            moved = [_mixed(i, url="http://new/") for i in range(50, 60)]
            db.add_assets([*kept, *moved, *(_mixed(i) for i in range(60, 65))], gen, _Seq())
        db.finish_rebuild(gen, {}, {})
        _assert_totals(db)
        assert db.counts()["assets"] == 45
        with db.transaction() as con:  # what if_exists="overwrite" does
            con.execute("UPDATE assets SET state=0, bytes=0 WHERE selected=1")
        _assert_totals(db)
        assert db.counts()["done"] == 0


def test_an_index_without_totals_gets_them_when_opened(tmp_path: Path) -> None:
    """An index written before the totals existed keeps its transfer state and gets correct
    counts (one scan), also when two connections open it at once."""
    import sqlite3

    path = tmp_path / "m.db"
    with Manifest(path) as db:
        gen = db.begin_rebuild()
        with db.transaction():
            db.add_assets([_mixed(i) for i in range(30)], gen, _Seq())
        db.finish_rebuild(gen, {}, {})
        db.record([Outcome(r.id, DONE, 5) for r in list(db.iter_rows())[:12]])
        expected = _scanned(db)
    with sqlite3.connect(path) as con:  # as the previous version wrote it
        for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type='trigger'"):
            con.execute(f"DROP TRIGGER {name}")
        con.execute("DROP TABLE totals")
    first, second = Manifest(path), Manifest(path)
    with first, second:
        assert first.counts() == second.counts() == expected[0]
        assert first.per_collection() == expected[1]
        first.record([Outcome(r.id, FAILED, 0) for r in list(first.iter_rows())[12:15]])
        _assert_totals(second)
        assert second.counts()["failed"] == 3
