"""The object store of one local cluster: its "API server" storage, one SQLite file per member.

The hub writes user objects here (``kubectl apply``); the cluster's agent reads them and writes what
its controllers derive (pods of Deployments, pod status, EndpointSlices). Both sides open the file
directly, so the hub is never between a cluster and its own objects. Every commit bumps a
revision; readers poll it to notice changes (a cheap query) — the watch of this emulated API.
Objects are stored as ordinary Kubernetes JSON.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from fleetnet.store.db import Database

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    kind TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
    body TEXT NOT NULL, rv INTEGER NOT NULL,
    PRIMARY KEY (kind, namespace, name)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta(key, value) VALUES ('rv', 0);
"""

Key = tuple[str, str, str]


def key_of(obj: dict[str, Any]) -> Key:
    md = obj.get("metadata") or {}
    return (str(obj["kind"]), str(md.get("namespace") or ""), str(md["name"]))


class ObjectStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = Database(path, _SCHEMA, "the cluster object store")
        self._conn = self._db.conn
        self._lock = self._db.lock
        self._tx = self._db.transaction

    def _bump(self, c: sqlite3.Connection) -> int:
        c.execute("UPDATE meta SET value = value + 1 WHERE key='rv'")
        return int(c.execute("SELECT value FROM meta WHERE key='rv'").fetchone()[0])

    def apply(self, objs: Iterable[dict[str, Any]]) -> list[tuple[Key, str]]:
        """Create or replace objects in one transaction; returns (key, 'created'|'configured'|'unchanged')."""
        out: list[tuple[Key, str]] = []
        with self._tx() as c:
            rv = None
            for obj in objs:
                k = key_of(obj)
                row = c.execute("SELECT body FROM objects WHERE kind=? AND namespace=? AND name=?", k).fetchone()
                if row is not None and "status" not in obj:
                    # an apply carries spec; the status belongs to the cluster's controllers
                    old_status = json.loads(row[0]).get("status")
                    if old_status is not None:
                        obj = {**obj, "status": old_status}
                body = json.dumps(obj, sort_keys=True)
                if row is not None and row[0] == body:
                    out.append((k, "unchanged"))
                    continue
                if rv is None:
                    rv = self._bump(c)
                c.execute(
                    "INSERT INTO objects(kind, namespace, name, body, rv) VALUES(?,?,?,?,?) "
                    "ON CONFLICT(kind, namespace, name) DO UPDATE SET body=excluded.body, rv=excluded.rv",
                    (*k, body, rv),
                )
                out.append((k, "created" if row is None else "configured"))
        return out

    def update_status(self, key: Key, status: dict[str, Any]) -> bool:
        """Replace only the status of an object (controllers never clobber a concurrent spec change)."""
        with self._tx() as c:
            row = c.execute("SELECT body FROM objects WHERE kind=? AND namespace=? AND name=?", key).fetchone()
            if row is None:
                return False
            obj = json.loads(row[0])
            if obj.get("status") == status:
                return True
            obj["status"] = status
            rv = self._bump(c)
            c.execute(
                "UPDATE objects SET body=?, rv=? WHERE kind=? AND namespace=? AND name=?",
                (json.dumps(obj, sort_keys=True), rv, *key),
            )
        return True

    def delete(self, keys: Iterable[Key]) -> list[Key]:
        deleted: list[Key] = []
        with self._tx() as c:
            bumped = False
            for k in keys:
                if c.execute("DELETE FROM objects WHERE kind=? AND namespace=? AND name=?", k).rowcount:
                    deleted.append(k)
                    if not bumped:
                        self._bump(c)
                        bumped = True
        return deleted

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT body FROM objects WHERE kind=? AND namespace=? AND name=?", (kind, namespace, name)
            ).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def list(self, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            if namespace is None:
                rows = self._conn.execute(
                    "SELECT body FROM objects WHERE kind=? ORDER BY namespace, name", (kind,)
                ).fetchall()
            else:
                rows = self._conn.execute(
                    "SELECT body FROM objects WHERE kind=? AND namespace=? ORDER BY name", (kind, namespace)
                ).fetchall()
        return [dict(json.loads(r[0])) for r in rows]

    def revision(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT value FROM meta WHERE key='rv'").fetchone()[0])

    def close(self) -> None:
        self._db.close()
