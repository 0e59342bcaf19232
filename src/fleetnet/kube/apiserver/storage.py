"""The API server's storage: one append-only log of revisions in SQLite, as k3s's kine keeps it.

Every write appends a row whose id is the new revision — the single, monotonically increasing
``resourceVersion`` of the cluster. The newest row of a key is its current value (or a tombstone);
a watch from revision N is "every row after N", which is how a client resumes after it (or this
server) restarted without missing or repeating an event. Compaction deletes superseded rows older
than a window; a watch from before the window gets 410 Expired and lists again.

Only the API server process opens the file, so the current state is also kept in memory (the
kube-apiserver watch cache): reads and lists never touch SQLite, and every commit is handed to the
registered watchers in the same call, in revision order.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fleetnet.errors import SystemFailure

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kine (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    created INTEGER NOT NULL,
    deleted INTEGER NOT NULL,
    create_revision INTEGER NOT NULL,
    prev_revision INTEGER NOT NULL,
    value BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS kine_name_id ON kine (name, id);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""

# Rows older than this many revisions are compacted (superseded values and tombstones only).
DEFAULT_WINDOW = 20_000
COMPACT_EVERY = 1_000


@dataclass(frozen=True, slots=True)
class Entry:
    """The current value of a key. ``obj`` is shared: readers must not mutate it."""

    key: str
    rv: int
    create_rv: int
    obj: dict[str, Any]
    raw: bytes


@dataclass(frozen=True, slots=True)
class Event:
    type: str  # ADDED | MODIFIED | DELETED
    key: str
    rv: int
    obj: dict[str, Any]
    raw: bytes
    prev: dict[str, Any] | None  # the value before this event (None for ADDED, or compacted away)


Listener = Callable[[Event], None]


class Expired(Exception):
    """A watch asked for a revision that compaction removed."""

    def __init__(self, requested: int, oldest: int) -> None:
        super().__init__(f"too old resource version: {requested} ({oldest})")
        self.requested = requested
        self.oldest = oldest


class Storage:
    def __init__(self, path: Path, window: int = DEFAULT_WINDOW) -> None:
        self.path = path
        self.window = window
        try:
            self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            # a killed process loses nothing committed; only a power cut could lose the last commits
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as e:
            raise SystemFailure(f"cannot open the API server's store {path}: {e}.") from e
        self.compacted = self._meta("compact_rev")
        self.rev = max(self.compacted, self._db.execute("SELECT COALESCE(MAX(id), 0) FROM kine").fetchone()[0])
        # prefix of a resource → key → entry
        self._buckets: dict[str, dict[str, Entry]] = {}
        self._prefixes: list[str] = []
        self._listeners: list[Listener] = []
        self._since_compact = 0
        self._loaded = False

    # ------------------------------------------------------------------ set-up
    def register_prefix(self, prefix: str) -> None:
        """Declare a resource's key prefix (``/registry/pods/``) before ``load``."""
        if prefix not in self._buckets:
            self._buckets[prefix] = {}
            self._prefixes.append(prefix)
            self._prefixes.sort(key=len, reverse=True)

    def load(self) -> None:
        rows = self._db.execute(
            "SELECT k.id, k.name, k.create_revision, k.value FROM kine k "
            "JOIN (SELECT name, MAX(id) AS id FROM kine GROUP BY name) m ON k.id = m.id WHERE k.deleted = 0"
        ).fetchall()
        for rv, key, create_rv, value in rows:
            bucket = self._bucket(key)
            if bucket is not None:
                bucket[key] = Entry(key, rv, create_rv, json.loads(value), bytes(value))
        self._loaded = True

    def _meta(self, key: str) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return int(row[0]) if row else 0

    def _bucket(self, key: str) -> dict[str, Entry] | None:
        for p in self._prefixes:
            if key.startswith(p):
                return self._buckets[p]
        return None

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)

        def cancel() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return cancel

    # ------------------------------------------------------------------ reads
    def get(self, key: str) -> Entry | None:
        bucket = self._bucket(key)
        return None if bucket is None else bucket.get(key)

    def list(self, prefix: str) -> list[Entry]:
        """Current entries under ``prefix`` (a resource prefix, or one namespace of it), sorted by key."""
        for p in self._prefixes:
            if prefix.startswith(p):
                bucket = self._buckets[p]
                if prefix == p:
                    return [bucket[k] for k in sorted(bucket)]
                return [bucket[k] for k in sorted(bucket) if k.startswith(prefix)]
        return []

    def count(self, prefix: str) -> int:
        return len(self.list(prefix))

    def since(self, rv: int, prefix: str) -> Iterator[Event]:
        """Every event under ``prefix`` after revision ``rv``, oldest first (for a resumed watch)."""
        if rv < self.compacted:
            raise Expired(rv, self.compacted)
        rows = self._db.execute(
            "SELECT id, name, created, deleted, prev_revision, value FROM kine "
            "WHERE id > ? AND name >= ? AND name < ? ORDER BY id",
            (rv, prefix, prefix + "\uffff"),
        ).fetchall()
        for rid, key, created, deleted, prev_rev, value in rows:
            prev = None
            if prev_rev:
                row = self._db.execute("SELECT value FROM kine WHERE id=?", (prev_rev,)).fetchone()
                prev = json.loads(row[0]) if row else None
            typ = "DELETED" if deleted else ("ADDED" if created else "MODIFIED")
            yield Event(typ, key, rid, json.loads(value), bytes(value), prev)

    # ------------------------------------------------------------------ writes
    def _append(self, key: str, created: bool, deleted: bool, create_rv: int, prev_rv: int, raw: bytes) -> None:
        try:
            self._db.execute(
                "INSERT INTO kine (id, name, created, deleted, create_revision, prev_revision, value) "
                "VALUES (?,?,?,?,?,?,?)",
                (self.rev, key, int(created), int(deleted), create_rv, prev_rv, raw),
            )
        except sqlite3.Error as e:
            self.rev -= 1
            raise SystemFailure(f"the API server's store could not write {key}: {e}.") from e

    def put(self, key: str, obj: dict[str, Any]) -> Entry:
        """Create or replace ``key`` with ``obj``; stamps ``metadata.resourceVersion`` with the new revision.

        Callers decide create-vs-update and check preconditions first (all on the one event loop, so
        nothing can change in between)."""
        bucket = self._bucket(key)
        if bucket is None:
            raise SystemFailure(f"no resource is registered for key {key}.")
        old = bucket.get(key)
        self.rev += 1
        obj.setdefault("metadata", {})["resourceVersion"] = str(self.rev)
        raw = json.dumps(obj, separators=(",", ":")).encode()
        create_rv = self.rev if old is None else old.create_rv
        self._append(key, old is None, False, create_rv, 0 if old is None else old.rv, raw)
        entry = Entry(key, self.rev, create_rv, obj, raw)
        bucket[key] = entry
        self._publish(
            Event("ADDED" if old is None else "MODIFIED", key, self.rev, obj, raw, None if old is None else old.obj)
        )
        return entry

    def delete(self, key: str) -> Entry | None:
        """Remove ``key``; the DELETED event carries its last value stamped with the deletion revision."""
        bucket = self._bucket(key)
        old = None if bucket is None else bucket.get(key)
        if old is None or bucket is None:
            return None
        self.rev += 1
        obj = json.loads(old.raw)
        obj["metadata"]["resourceVersion"] = str(self.rev)
        raw = json.dumps(obj, separators=(",", ":")).encode()
        self._append(key, False, True, old.create_rv, old.rv, raw)
        del bucket[key]
        entry = Entry(key, self.rev, old.create_rv, obj, raw)
        self._publish(Event("DELETED", key, self.rev, obj, raw, old.obj))
        return entry

    def _publish(self, ev: Event) -> None:
        for listener in list(self._listeners):
            listener(ev)
        self._since_compact += 1
        if self._since_compact >= min(COMPACT_EVERY, self.window):
            self._since_compact = 0
            self.compact()

    def compact(self) -> int:
        """Delete superseded rows and tombstones older than the window; returns the new compacted revision."""
        target = self.rev - self.window
        if target <= self.compacted:
            return self.compacted
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute(
                "DELETE FROM kine WHERE id <= ? AND (deleted = 1 OR EXISTS "
                "(SELECT 1 FROM kine k2 WHERE k2.name = kine.name AND k2.id > kine.id))",
                (target,),
            )
            self._db.execute(
                "INSERT INTO meta(key, value) VALUES('compact_rev', ?) "
                "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                (target,),
            )
            self._db.execute("COMMIT")
        except sqlite3.Error:
            self._db.execute("ROLLBACK")
            raise
        self.compacted = target
        return target

    def close(self) -> None:
        self._db.close()
