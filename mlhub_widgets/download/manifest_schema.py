"""The tables of the asset index (``mlhub_assets.db``, :mod:`.manifest`) and the triggers that
keep its per-collection totals.

Schema (``PRAGMA user_version`` = :data:`SCHEMA_VERSION`)::

    meta(key PRIMARY KEY, value)                     catalogue identity, filter, counters
    collections(collection_id PRIMARY KEY, types, title, n_items)
    items(id PRIMARY KEY, collection_id, item_id, spatial, matched)
        spatial: compact JSON {bbox, geometry, properties{datetime,start_,end_datetime}}
    assets(id PRIMARY KEY, path UNIQUE, url, collection_id, item_id, item_ref, asset_key,
           media_type, size, checksum, selected, seq, state, bytes, etag, last_modified,
           attempts, status, error, gen, updated)
        state: 0 pending, 1 done, 2 failed; size/checksum: file:size/file:checksum (expected)
        seq: order in which rows became selected (transfers stream rows with seq > last seen)
    asset_refs(asset_id, item_ref, url)              more items sharing one saved path (_common)
    asset_keys(collection_id, asset_key, n, PRIMARY KEY(collection_id, asset_key))
    totals(collection_id PRIMARY KEY, assets, selected, bytes, sized, done, failed, done_bytes)
        per collection: all rows, then selected rows, their file:size sum, how many have one,
        done, failed, bytes done; kept by triggers on ``assets`` (every writer, in the same
        transaction), so that counts cost one row per collection instead of a scan
    folder_stamps(first_id PRIMARY KEY, path UNIQUE, ino, mtime_ns, ctime_ns)
        the stamp of an asset folder (relative path, ``""`` for the dataset folder) when a
        re-run last found all its files (:mod:`.disk_check`), under the id of the folder's
        first asset row (read by ranges of ids, as the rows); created by the first such check

An index written before the ``totals`` table existed gets it (filled by one scan) when opened;
older code that opens a newer index keeps it right without knowing it (the triggers live in
the database), and ignores ``folder_stamps``, so these additions do not change
:data:`SCHEMA_VERSION`.
"""

from __future__ import annotations

__all__ = ["SCHEMA_SQL", "SCHEMA_VERSION", "TOTALS", "totals_fill", "totals_schema"]

SCHEMA_VERSION = 1

SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS collections (
    collection_id TEXT PRIMARY KEY, types TEXT, title TEXT, n_items INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS items (
    id INTEGER PRIMARY KEY,
    collection_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    spatial TEXT,
    matched INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS assets (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    url TEXT NOT NULL,
    collection_id TEXT NOT NULL,
    item_id TEXT,
    item_ref INTEGER,
    asset_key TEXT NOT NULL,
    media_type TEXT,
    size INTEGER,
    checksum TEXT,
    selected INTEGER NOT NULL DEFAULT 0,
    seq INTEGER NOT NULL DEFAULT 0,
    state INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0,
    etag TEXT,
    last_modified TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    status INTEGER,
    error TEXT,
    gen INTEGER NOT NULL DEFAULT 0,
    updated REAL
);
CREATE TABLE IF NOT EXISTS asset_refs (
    asset_id INTEGER NOT NULL, item_ref INTEGER NOT NULL, url TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS asset_keys (
    collection_id TEXT NOT NULL, asset_key TEXT NOT NULL, n INTEGER NOT NULL,
    PRIMARY KEY (collection_id, asset_key)
);
CREATE INDEX IF NOT EXISTS assets_selected_seq ON assets (selected, seq);
CREATE INDEX IF NOT EXISTS assets_state ON assets (state, selected);
CREATE INDEX IF NOT EXISTS assets_item_ref ON assets (item_ref);
CREATE INDEX IF NOT EXISTS asset_refs_asset ON asset_refs (asset_id);
CREATE INDEX IF NOT EXISTS asset_refs_item ON asset_refs (item_ref);
"""

#: What one asset row adds to each column of ``totals`` (``{p}``: ``new``, ``old`` or the table).
TOTALS = {
    "assets": "1",
    "selected": "({p}.selected != 0)",
    "bytes": "({p}.selected != 0) * coalesce({p}.size, 0)",
    "sized": "({p}.selected != 0) * ({p}.size IS NOT NULL)",
    "done": "({p}.selected != 0) * ({p}.state = 1)",
    "failed": "({p}.selected != 0) * ({p}.state = 2)",
    "done_bytes": "({p}.selected != 0) * ({p}.state = 1) * {p}.bytes",
}


def totals_schema() -> list[str]:
    """The ``totals`` table and the triggers that keep it equal to a scan of ``assets``."""
    cols = ", ".join(TOTALS)
    new = ", ".join(e.format(p="new") for e in TOTALS.values())
    add = ", ".join(f"{c} = {c} + excluded.{c}" for c in TOTALS)
    sub = ", ".join(f"{c} = {c} - ({e.format(p='old')})" for c, e in TOTALS.items())
    delta = ", ".join(
        f"{c} = {c} + ({e.format(p='new')}) - ({e.format(p='old')})"
        for c, e in TOTALS.items()
        if c != "assets"
    )
    changed = " OR ".join(f"old.{c} IS NOT new.{c}" for c in ("selected", "size", "state", "bytes"))
    upsert = (
        f"INSERT INTO totals(collection_id, {cols}) VALUES (new.collection_id, {new}) "
        f"ON CONFLICT(collection_id) DO UPDATE SET {add};"
    )
    return [
        "CREATE TABLE IF NOT EXISTS totals (collection_id TEXT PRIMARY KEY, "
        + ", ".join(f"{c} INTEGER NOT NULL DEFAULT 0" for c in TOTALS)
        + ") WITHOUT ROWID",
        f"CREATE TRIGGER IF NOT EXISTS totals_insert AFTER INSERT ON assets BEGIN {upsert} END",
        "CREATE TRIGGER IF NOT EXISTS totals_delete AFTER DELETE ON assets BEGIN "
        f"UPDATE totals SET {sub} WHERE collection_id = old.collection_id; END",
        # the common case (a transfer's outcome, a selection change): one row of totals
        "CREATE TRIGGER IF NOT EXISTS totals_update "
        "AFTER UPDATE OF selected, size, state, bytes ON assets "
        f"WHEN old.collection_id = new.collection_id AND ({changed}) BEGIN "
        f"UPDATE totals SET {delta} WHERE collection_id = new.collection_id; END",
        "CREATE TRIGGER IF NOT EXISTS totals_move AFTER UPDATE OF collection_id ON assets "
        "WHEN old.collection_id IS NOT new.collection_id BEGIN "
        f"UPDATE totals SET {sub} WHERE collection_id = old.collection_id; {upsert} END",
    ]


def totals_fill() -> str:
    """Totals from a scan (an index written before the table existed)."""
    sums = ", ".join(f"sum({e.format(p='assets')})" for e in TOTALS.values())
    return (
        f"INSERT INTO totals(collection_id, {', '.join(TOTALS)}) "
        f"SELECT collection_id, {sums} FROM assets GROUP BY collection_id"
    )
