"""The persistent asset index of a dataset download (SQLite, ``mlhub_assets.db``).

One database per ``{asset_dir}/{dataset_id}/`` records every asset the catalogue offers, which
of them the current filters select, and how far each one got, so that a re-run:

* does not unpack or re-scan the catalogue when the catalogue is unchanged;
* re-plans the selection from the stored items when only the filters changed;
* makes no request at all for assets recorded as complete;
* retries only what is missing or failed.

The tables, their triggers and :data:`SCHEMA_VERSION` are in :mod:`.manifest_schema`.

All writes are batched in transactions; the database runs in WAL mode so the transfer side
can read rows while the catalogue side is still inserting them (each thread opens its own
:class:`Manifest`).
"""

from __future__ import annotations

import contextlib
import functools
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from .manifest_schema import SCHEMA_SQL, SCHEMA_VERSION, totals_fill, totals_schema

__all__ = [
    "DONE",
    "FAILED",
    "MANIFEST_NAME",
    "PENDING",
    "SCHEMA_VERSION",
    "AssetRow",
    "Manifest",
    "NewAsset",
]

MANIFEST_NAME = "mlhub_assets.db"
PENDING, DONE, FAILED = 0, 1, 2
STATE_NAMES = {PENDING: "pending", DONE: "done", FAILED: "failed"}


@dataclass(frozen=True, slots=True)
class NewAsset:
    """An asset found in the catalogue, ready to be inserted."""

    path: str
    url: str
    collection_id: str
    item_id: str | None
    item_ref: int | None
    asset_key: str
    media_type: str | None
    size: int | None
    checksum: str | None
    selected: bool


class AssetRow(NamedTuple):
    """One asset row as read for transfer or reporting (a named tuple: ten times cheaper to
    make than a frozen dataclass, and rows are made once per asset per run)."""

    id: int
    path: str
    url: str
    collection_id: str
    item_id: str | None
    asset_key: str
    size: int | None
    checksum: str | None
    state: int
    bytes: int
    seq: int
    attempts: int
    status: int | None
    error: str | None


_make_row: Callable[[Any], AssetRow] = functools.partial(tuple.__new__, AssetRow)
_ROW_COLUMNS = (
    "id, path, url, collection_id, item_id, asset_key, size, checksum, state, bytes, seq, "
    "attempts, status, error"
)


class Outcome(NamedTuple):
    """The result of one transfer, as written back to the manifest."""

    asset_id: int
    state: int
    bytes: int
    etag: str | None = None
    last_modified: str | None = None
    attempts: int = 1
    status: int | None = None
    error: str | None = None


class Manifest:
    """One connection to an asset index (not thread-safe: one instance per thread).

    ``cache_kib`` caps SQLite's page cache of this connection (its default is 2 MiB): the
    download process reads and updates rows in ``seq`` order, which needs little cache, while
    the index builder's inserts into the indexes are random and keep the default.
    """

    def __init__(
        self, path: str | Path, *, timeout: float = 60.0, cache_kib: int | None = None
    ) -> None:
        self.path = Path(path)
        self._cache_kib = cache_kib
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = self._connect(timeout)
        try:
            self._prepare(timeout)
        except BaseException:
            self._db.close()
            raise
        self._lock = threading.Lock()

    def _connect(self, timeout: float) -> sqlite3.Connection:
        db = sqlite3.connect(
            str(self.path), timeout=timeout, isolation_level=None, check_same_thread=False
        )
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            if self._cache_kib is not None:
                db.execute(f"PRAGMA cache_size={-int(self._cache_kib)}")
            # temp_store stays at its default (a file once the sorter outgrows the cache):
            # in memory, the per-collection GROUP BY alone held +60 MB at a million assets
        except BaseException:
            db.close()
            raise
        return db

    def _prepare(self, timeout: float) -> None:
        version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
        if version not in (0, SCHEMA_VERSION):
            # An index written by another version: it is only a cache, rebuild it.
            self._db.close()
            for suffix in ("", "-wal", "-shm"):
                Path(str(self.path) + suffix).unlink(missing_ok=True)
            self._db = self._connect(timeout)
            version = 0
        if version != SCHEMA_VERSION:  # a new index (an existing one is opened without writes:
            # they would fail on a full disk, where reading must still work)
            self._db.executescript(SCHEMA_SQL)
            with self.transaction():
                for statement in totals_schema():
                    self._db.execute(statement)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        elif not self._has_totals():
            self._add_totals()

    def _has_totals(self) -> bool:
        row = self._db.execute(
            "SELECT count(*) FROM sqlite_master WHERE type='trigger' AND tbl_name='assets' "
            "AND name LIKE 'totals_%'"
        ).fetchone()
        return int(row[0]) == 4

    def _add_totals(self) -> None:
        """Give an index written before the ``totals`` table its table, triggers and counts
        (one scan; another connection may be doing the same: the first one wins)."""
        with self.transaction():
            if self._has_totals():
                return
            self._db.execute("DROP TABLE IF EXISTS totals")
            for statement in totals_schema():
                self._db.execute(statement)
            self._db.execute(totals_fill())

    # -- housekeeping ------------------------------------------------------------------------
    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    def __enter__(self) -> Manifest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def transaction(self) -> _Transaction:
        """``with manifest.transaction(): ...`` — one ``BEGIN IMMEDIATE`` … ``COMMIT``."""
        return _Transaction(self._db)

    # -- meta --------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        """A value of the ``meta`` table, or ``None``."""
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def get_meta_json(self, key: str) -> Any:
        """A JSON value of the ``meta`` table, or ``None``."""
        value = self.get_meta(key)
        return None if value is None else json.loads(value)

    def set_meta(self, values: Mapping[str, object]) -> None:
        """Store values (non-strings as JSON) in the ``meta`` table, in one transaction."""
        rows = [(k, v if isinstance(v, str) else json.dumps(v)) for k, v in values.items()]
        with self.transaction():
            self._db.executemany("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", rows)

    def delete_meta(self, *keys: str) -> None:
        """Remove keys from the ``meta`` table."""
        with self.transaction():
            self._db.executemany("DELETE FROM meta WHERE key=?", [(k,) for k in keys])

    # -- building the index ------------------------------------------------------------------
    def begin_rebuild(self) -> int:
        """Start a new index generation; returns its number.

        Items, references and key counts are cleared; asset rows stay (with their transfer
        state) until :meth:`finish_rebuild` drops those the new catalogue no longer has.
        """
        gen = int(self.get_meta("generation") or 0) + 1
        with self.transaction():
            self._db.execute("DELETE FROM items")
            self._db.execute("DELETE FROM asset_refs")
            self._db.execute("DELETE FROM asset_keys")
            self._db.execute("DELETE FROM collections")
            self._db.execute("UPDATE assets SET selected=0")
            for key in ("index_complete", "filter", "filter_stats", "catalog"):
                self._db.execute("DELETE FROM meta WHERE key=?", (key,))
            self._db.execute(
                "INSERT OR REPLACE INTO meta(key, value) VALUES ('generation', ?)", (str(gen),)
            )
        return gen

    def max_seq(self) -> int:
        """The highest selection sequence number in use."""
        row = self._db.execute("SELECT max(seq) FROM assets").fetchone()
        return int(row[0] or 0)

    def add_collections(self, rows: Iterable[tuple[str, str, str | None]]) -> None:
        """Insert ``(collection_id, types_json, title)`` rows (inside a transaction)."""
        self._db.executemany(
            "INSERT OR REPLACE INTO collections(collection_id, types, title) VALUES (?, ?, ?)",
            rows,
        )

    def add_items(self, rows: Iterable[tuple[int, str, str, str, int]]) -> None:
        """Insert ``(id, collection_id, item_id, spatial_json, matched)`` rows (in a
        transaction). Ids are assigned by the caller (the table is emptied by a rebuild)."""
        self._db.executemany(
            "INSERT INTO items(id, collection_id, item_id, spatial, matched) "
            "VALUES (?, ?, ?, ?, ?)",
            rows,
        )

    def add_assets(
        self, assets: Sequence[NewAsset], gen: int, next_seq: Callable[[], int]
    ) -> list[tuple[NewAsset, str]]:
        """Insert assets (inside a transaction), deduplicating by saved path.

        A path already present from an older generation is taken over (its transfer state is
        kept when the URL and expected size are unchanged). A path already used in this
        generation becomes a reference (``asset_refs``); when the new reference is selected the
        shared row becomes selected too. Returns ``(asset, existing_url)`` for every path
        collision whose URL differs from the stored one (only the first URL is fetched).
        """
        if not assets:
            return []
        now = time.time()
        params = [
            (
                a.path,
                a.url,
                a.collection_id,
                a.item_id,
                a.item_ref,
                a.asset_key,
                a.media_type,
                a.size,
                a.checksum,
                int(a.selected),
                next_seq() if a.selected else 0,
                gen,
                now,
            )
            for a in assets
        ]
        cur = self._db.executemany(
            """
            INSERT INTO assets(path, url, collection_id, item_id, item_ref, asset_key,
                               media_type, size, checksum, selected, seq, gen, updated)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT(path) DO UPDATE SET
                state = CASE WHEN assets.url = excluded.url
                              AND coalesce(assets.size, -1) = coalesce(excluded.size, -1)
                              AND coalesce(assets.checksum, '') = coalesce(excluded.checksum, '')
                         THEN assets.state ELSE 0 END,
                bytes = CASE WHEN assets.url = excluded.url THEN assets.bytes ELSE 0 END,
                url = excluded.url, collection_id = excluded.collection_id,
                item_id = excluded.item_id, item_ref = excluded.item_ref,
                asset_key = excluded.asset_key, media_type = excluded.media_type,
                size = excluded.size, checksum = excluded.checksum,
                selected = excluded.selected, seq = excluded.seq, gen = excluded.gen,
                updated = excluded.updated
            WHERE assets.gen < excluded.gen
            """,
            params,
        )
        if cur.rowcount == len(assets):  # rows written by the statement (not its triggers)
            return []
        return self._resolve_duplicates(assets, next_seq)

    def _resolve_duplicates(
        self, assets: Sequence[NewAsset], next_seq: Callable[[], int]
    ) -> list[tuple[NewAsset, str]]:
        paths = list({a.path for a in assets})
        stored: dict[str, tuple[int, str, int | None, str, int]] = {}
        for start in range(0, len(paths), 500):
            chunk = paths[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for row in self._db.execute(
                f"SELECT path, id, url, item_ref, asset_key, selected FROM assets "
                f"WHERE path IN ({marks})",
                chunk,
            ):
                stored[row[0]] = (row[1], row[2], row[3], row[4], row[5])
        collisions: list[tuple[NewAsset, str]] = []
        refs: list[tuple[int, int, str]] = []
        for a in assets:
            asset_id, url, item_ref, key, selected = stored[a.path]
            if item_ref == a.item_ref and key == a.asset_key and url == a.url:
                continue  # this row is the one that was inserted
            if a.item_ref is not None:
                refs.append((asset_id, a.item_ref, a.url))
            if url != a.url:
                collisions.append((a, url))
            if a.selected and not selected:
                self._db.execute(
                    "UPDATE assets SET selected=1, seq=? WHERE id=?", (next_seq(), asset_id)
                )
                stored[a.path] = (asset_id, url, item_ref, key, 1)
        if refs:
            self._db.executemany(
                "INSERT INTO asset_refs(asset_id, item_ref, url) VALUES (?, ?, ?)", refs
            )
        return collisions

    def finish_rebuild(
        self, gen: int, key_counts: Mapping[tuple[str, str], int], item_counts: Mapping[str, int]
    ) -> int:
        """Drop assets the catalogue no longer has, store key counts; returns rows dropped."""
        with self.transaction():
            cur = self._db.execute("DELETE FROM assets WHERE gen < ?", (gen,))
            dropped = cur.rowcount
            self._db.executemany(
                "INSERT OR REPLACE INTO asset_keys(collection_id, asset_key, n) VALUES (?, ?, ?)",
                [(c, k, n) for (c, k), n in key_counts.items()],
            )
            for cid, n in item_counts.items():
                self._db.execute(
                    "INSERT INTO collections(collection_id, n_items) VALUES (?, ?) "
                    "ON CONFLICT(collection_id) DO UPDATE SET n_items=excluded.n_items",
                    (cid, n),
                )
        return dropped

    # -- re-planning -------------------------------------------------------------------------
    def iter_items(self, batch: int = 2000) -> Iterator[list[tuple[int, str, str | None]]]:
        """Yield batches of ``(id, collection_id, spatial_json)`` for every item."""
        last = 0
        while True:
            rows = self._db.execute(
                "SELECT id, collection_id, spatial FROM items WHERE id > ? ORDER BY id LIMIT ?",
                (last, batch),
            ).fetchall()
            if not rows:
                return
            yield [(int(r[0]), str(r[1]), r[2]) for r in rows]
            last = int(rows[-1][0])

    def set_item_matches(self, rows: Iterable[tuple[int, int]]) -> None:
        """``(matched, item id)`` pairs (inside a transaction)."""
        self._db.executemany("UPDATE items SET matched=? WHERE id=?", rows)

    def match_all_items(self) -> None:
        """Mark every item as matching (inside a transaction)."""
        self._db.execute("UPDATE items SET matched=1 WHERE matched=0")

    def reselect(self, wanted: Iterable[tuple[str, str]]) -> None:
        """Recompute ``selected`` from item matches and the wanted (collection, key) pairs.

        Runs inside a transaction. Sequence numbers are reset to the row order.
        """
        self._db.execute("DROP TABLE IF EXISTS temp.wanted")
        self._db.execute(
            "CREATE TEMP TABLE wanted (collection_id TEXT, asset_key TEXT, "
            "PRIMARY KEY (collection_id, asset_key))"
        )
        self._db.executemany("INSERT OR IGNORE INTO temp.wanted VALUES (?, ?)", wanted)
        self._db.execute(
            """
            UPDATE assets SET seq = id, selected = (
                EXISTS (SELECT 1 FROM temp.wanted w
                        WHERE w.collection_id = assets.collection_id
                          AND w.asset_key = assets.asset_key)
                AND (assets.item_ref IS NULL
                     OR EXISTS (SELECT 1 FROM items i
                                WHERE i.id = assets.item_ref AND i.matched = 1)
                     OR EXISTS (SELECT 1 FROM asset_refs r JOIN items i ON i.id = r.item_ref
                                WHERE r.asset_id = assets.id AND i.matched = 1)))
            """
        )
        self._db.execute("DROP TABLE temp.wanted")

    # -- reading -----------------------------------------------------------------------------
    def asset_keys(self) -> dict[str, list[str]]:
        """``{collection_id: [asset keys]}`` the catalogue offers (sorted)."""
        out: dict[str, list[str]] = {}
        for cid in self._collection_ids():
            out[cid] = []
        for cid, key in self._db.execute(
            "SELECT collection_id, asset_key FROM asset_keys ORDER BY collection_id, asset_key"
        ):
            out.setdefault(cid, []).append(key)
        return out

    def _collection_ids(self) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT collection_id FROM collections ORDER BY 1")]

    def collections(self) -> dict[str, dict[str, Any]]:
        """``{collection_id: {"types": [...], "title": ..., "items": n}}``."""
        out: dict[str, dict[str, Any]] = {}
        for cid, types, title, n in self._db.execute(
            "SELECT collection_id, types, title, n_items FROM collections ORDER BY 1"
        ):
            out[cid] = {"types": json.loads(types) if types else [], "title": title, "items": n}
        return out

    def rows_after(self, seq: int, limit: int, *, pending_only: bool = False) -> list[AssetRow]:
        """Selected rows with ``seq`` greater than ``seq``, in ``seq`` order (optionally only
        those not done)."""
        cond = " AND state != 1" if pending_only else ""
        rows = self._db.execute(
            f"SELECT {_ROW_COLUMNS} FROM assets WHERE selected=1{cond} AND seq > ? "
            "ORDER BY seq LIMIT ?",
            (seq, limit),
        ).fetchall()
        return list(map(_make_row, rows))

    def pending_after(self, seq: int, unknown_size: int) -> tuple[int, int]:
        """Count and bytes of the selected rows not recorded as done with ``seq`` greater
        than ``seq`` (``unknown_size`` bytes for a row without ``size``)."""
        row = self._db.execute(
            "SELECT count(*), coalesce(sum(coalesce(size, ?)), 0) FROM assets "
            "WHERE selected=1 AND state != 1 AND seq > ?",
            (unknown_size, seq),
        ).fetchone()
        return int(row[0]), int(row[1])

    def max_id(self) -> int:
        """The highest asset row id (0 without rows)."""
        row = self._db.execute("SELECT max(id) FROM assets").fetchone()
        return int(row[0] or 0)

    def done_rows(self, first: int, end: int) -> list[tuple[int, str, int]]:
        """``(id, path, expected size)`` of the selected rows recorded as done with
        ``first <= id < end``, in id order.

        They come from SQLite as one JSON text: the module releases the GIL around every row
        it steps through, and the re-run's check reads rows while its threads ``stat``; a
        thread taking the GIL back for every row waits behind all of them."""
        text = self._db.execute(
            "SELECT json_group_array(json_array(id, path, coalesce(size, bytes))) FROM "
            "(SELECT id, path, size, bytes FROM assets WHERE id >= ? AND id < ? "
            "AND state=1 AND selected=1 ORDER BY id)",
            (first, end),
        ).fetchone()[0]
        rows: list[tuple[int, str, int]] = json.loads(text)
        return rows

    def done_paths(self, first: int, end: int) -> list[str]:
        """The paths of the selected rows recorded as done with ``first <= id < end``, in id
        order (as :meth:`done_rows`, at half the cost, for a check that may need no more)."""
        text = self._db.execute(
            "SELECT json_group_array(path) FROM (SELECT path FROM assets WHERE id >= ? AND "
            "id < ? AND state=1 AND selected=1 ORDER BY id)",
            (first, end),
        ).fetchone()[0]
        paths: list[str] = json.loads(text)
        return paths

    def iter_rows(self, *, state: int | None = None, selected: bool = True) -> Iterator[AssetRow]:
        """Every (selected) row, optionally of one state, in id order, fetched in pages."""
        last = 0
        cond = "selected=1 AND " if selected else ""
        if state is not None:
            cond += f"state={int(state)} AND "
        while True:
            rows = self._db.execute(
                f"SELECT {_ROW_COLUMNS} FROM assets WHERE {cond}id > ? ORDER BY id LIMIT 2000",
                (last,),
            ).fetchall()
            if not rows:
                return
            yield from map(_make_row, rows)
            last = int(rows[-1][0])

    def counts(self) -> dict[str, int]:
        """Selected assets by state plus totals: ``selected``, ``done``, ``failed``, ``pending``,
        ``done_bytes``, ``known_bytes``, ``sized``, ``assets`` (all rows). Read from the
        ``totals`` table: one row per collection, whatever the number of assets."""
        row = self._db.execute(
            "SELECT coalesce(sum(selected), 0), coalesce(sum(done), 0), "
            "coalesce(sum(failed), 0), coalesce(sum(done_bytes), 0), coalesce(sum(bytes), 0), "
            "coalesce(sum(sized), 0), coalesce(sum(assets), 0) FROM totals"
        ).fetchone()
        selected, done, failed, done_bytes, known, sized, total = (int(v) for v in row)
        return {
            "selected": selected,
            "done": done,
            "failed": failed,
            "pending": selected - done - failed,
            "done_bytes": done_bytes,
            "known_bytes": known,
            "sized": sized,
            "assets": total,
        }

    def per_collection(self) -> dict[str, dict[str, int]]:
        """``{collection_id: {"assets", "bytes", "sized", "done", "failed"}}`` of selected rows
        (collections with at least one), from the ``totals`` table."""
        out: dict[str, dict[str, int]] = {}
        for cid, n, size, sized, done, failed in self._db.execute(
            "SELECT collection_id, selected, bytes, sized, done, failed FROM totals "
            "WHERE selected > 0 ORDER BY 1"
        ):
            out[cid] = {
                "assets": int(n),
                "bytes": int(size),
                "sized": int(sized),
                "done": int(done),
                "failed": int(failed),
            }
        return out

    def collisions(self) -> int:
        """How many references share a saved path with a *different* URL."""
        row = self._db.execute(
            "SELECT count(*) FROM asset_refs r JOIN assets a ON a.id = r.asset_id "
            "WHERE r.url != a.url"
        ).fetchone()
        return int(row[0])

    def item_count(self) -> int:
        """Number of items in the index: as the builder recorded it for a complete index
        (counting the rows reads the whole ``items`` table, 0.2 s at 500,000 items with a warm
        cache, more from the disk)."""
        if self.get_meta("index_complete") == "1":
            recorded = self.get_meta("items")
            if recorded is not None and recorded.isdigit():
                return int(recorded)
        return int(self._db.execute("SELECT count(*) FROM items").fetchone()[0])

    def has_done(self) -> bool:
        """Is any asset recorded as downloaded?"""
        return (
            self._db.execute("SELECT 1 FROM assets WHERE state=? LIMIT 1", (DONE,)).fetchone()
            is not None
        )

    def is_done(self, path: str) -> bool:
        """Is the asset saved at ``path`` recorded as downloaded?"""
        row = self._db.execute("SELECT state FROM assets WHERE path=?", (path,)).fetchone()
        return row is not None and row[0] == DONE

    # -- folder stamps (the re-run's check of files, :mod:`.disk_check`) ---------------------
    def has_folder_stamps(self) -> bool:
        """Has a check of files kept folder stamps in this index (is there the table)?"""
        return self._has_table("folder_stamps")

    def folder_stamps(self, first: int, end: int) -> dict[str, list[int]]:
        """``{folder: [ino, mtime_ns, ctime_ns]}`` of the stamps kept under row ids
        ``first <= id < end`` (those of folders whose first row is in that range); only when
        :meth:`has_folder_stamps`."""
        text = self._db.execute(
            "SELECT json_group_object(path, json_array(ino, mtime_ns, ctime_ns)) "
            "FROM folder_stamps WHERE first_id >= ? AND first_id < ?",
            (first, end),
        ).fetchone()[0]
        stamps: dict[str, list[int]] = json.loads(text)
        return stamps

    def unselected_done_folders(self, first: int, end: int) -> set[str]:
        """The folders (relative, ``""`` for the dataset folder) holding rows recorded as done
        but not selected, with ``first <= id < end``: the re-run's check does not look at their
        files, so it keeps no stamp for these folders."""
        text = self._db.execute(
            "SELECT json_group_array(DISTINCT rtrim(path, replace(path, '/', ''))) FROM assets "
            "WHERE id >= ? AND id < ? AND +state=1 AND +selected=0",
            (first, end),
        ).fetchone()[0]
        return {folder[:-1] for folder in json.loads(text)}

    def stage_folder_stamps(self, rows: Iterable[tuple[int, str, int, int, int]]) -> None:
        """Hold ``(first_id, folder, ino, mtime_ns, ctime_ns)`` rows for
        :meth:`keep_folder_stamps` (in a temporary table of this connection: nothing is
        written to the index yet). ``first_id``: the id of a done row in the folder."""
        self._db.execute(
            "CREATE TEMP TABLE IF NOT EXISTS staged_folders (first_id INTEGER, "
            "path TEXT NOT NULL, ino INTEGER, mtime_ns INTEGER, ctime_ns INTEGER)"
        )
        self._db.execute(
            "INSERT INTO temp.staged_folders SELECT json_extract(value, '$[0]'), "
            "json_extract(value, '$[1]'), json_extract(value, '$[2]'), "
            "json_extract(value, '$[3]'), json_extract(value, '$[4]') FROM json_each(?)",
            (json.dumps(list(rows)),),
        )

    def keep_folder_stamps(self) -> int:
        """Store the staged stamps under the lowest row id staged for each folder (a folder
        staged with different stamps is left out: it changed during the check); returns how
        many folders were stored. Call it only once every file found missing is marked
        pending."""
        if not self._has_table("staged_folders", schema="temp"):
            return 0
        try:
            with self.transaction():
                self._db.execute(
                    "CREATE TABLE IF NOT EXISTS folder_stamps (first_id INTEGER PRIMARY KEY, "
                    "path TEXT NOT NULL UNIQUE, ino INTEGER, mtime_ns INTEGER, ctime_ns INTEGER)"
                )
                cur = self._db.execute(  # REPLACE also drops the folder's row under another id
                    "INSERT OR REPLACE INTO folder_stamps "
                    "SELECT min(first_id), path, min(ino), min(mtime_ns), min(ctime_ns) "
                    "FROM temp.staged_folders GROUP BY path "
                    "HAVING min(ino) = max(ino) AND min(mtime_ns) = max(mtime_ns) "
                    "AND min(ctime_ns) = max(ctime_ns)"
                )
                return max(0, cur.rowcount)
        finally:
            self._db.execute("DROP TABLE IF EXISTS temp.staged_folders")

    def _has_table(self, name: str, schema: str = "main") -> bool:
        row = self._db.execute(
            f"SELECT count(*) FROM {schema}.sqlite_master WHERE type='table' AND name=?", (name,)
        ).fetchone()
        return bool(row[0])

    # -- transfer bookkeeping ----------------------------------------------------------------
    def mark_pending(self, ids: Iterable[int]) -> None:
        """Reset rows to pending (e.g. a file recorded as done is missing)."""
        with self.transaction():
            self._db.executemany(
                "UPDATE assets SET state=0, bytes=0 WHERE id=?", [(i,) for i in ids]
            )

    def record(self, outcomes: Sequence[Outcome]) -> None:
        """Write transfer results in one transaction."""
        if not outcomes:
            return
        now = time.time()
        with self.transaction():
            self._db.executemany(
                """UPDATE assets SET state=?, bytes=?, etag=coalesce(?, etag),
                          last_modified=coalesce(?, last_modified), attempts=attempts+?,
                          status=?, error=?, updated=? WHERE id=?""",
                [
                    (
                        o.state,
                        o.bytes,
                        o.etag,
                        o.last_modified,
                        o.attempts,
                        o.status,
                        o.error,
                        now,
                        o.asset_id,
                    )
                    for o in outcomes
                ],
            )


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> sqlite3.Connection:
        self._db.execute("BEGIN IMMEDIATE")
        return self._db

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            try:
                self._db.execute("COMMIT")
            except BaseException:
                self._rollback()  # e.g. SQLITE_FULL: nothing of the transaction is kept
                raise
        else:
            self._rollback()

    def _rollback(self) -> None:
        """Roll back what is still open; never masks the error that led here (SQLite may
        already have rolled back by itself, e.g. after "database or disk is full")."""
        if self._db.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
