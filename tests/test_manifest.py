"""The SQLite asset index (mlhub_widgets.download.manifest)."""

from __future__ import annotations

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
