"""The hub's store: one SQLite file under the fleet home, every change in a transaction.

Documents are JSON bodies keyed by (kind, name); typed conversion happens in the hub. A daemon
restart reopens the same file and loses nothing. ``BEGIN IMMEDIATE`` takes the write lock up front
so a read-modify-write (an id allocation, a state transition) cannot interleave with another.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fleetnet.store.db import Database

_SCHEMA = """
CREATE TABLE IF NOT EXISTS docs (
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    body TEXT NOT NULL,
    version INTEGER NOT NULL DEFAULT 1,
    PRIMARY KEY (kind, name)
);
"""


# named outside the classes, whose `list` methods shadow the builtin
Docs = list[dict[str, Any]]
Names = list[str]


class Tx:
    """Operations inside one transaction."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._c = conn

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        row = self._c.execute("SELECT body FROM docs WHERE kind=? AND name=?", (kind, name)).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def put(self, kind: str, name: str, body: dict[str, Any]) -> None:
        self._c.execute(
            "INSERT INTO docs(kind, name, body) VALUES(?,?,?) "
            "ON CONFLICT(kind, name) DO UPDATE SET body=excluded.body, version=docs.version+1",
            (kind, name, json.dumps(body, sort_keys=True)),
        )

    def delete(self, kind: str, name: str) -> bool:
        return self._c.execute("DELETE FROM docs WHERE kind=? AND name=?", (kind, name)).rowcount > 0

    def list(self, kind: str) -> Docs:
        rows = self._c.execute("SELECT body FROM docs WHERE kind=? ORDER BY name", (kind,)).fetchall()
        return [dict(json.loads(r[0])) for r in rows]

    def names(self, kind: str) -> Names:
        return [r[0] for r in self._c.execute("SELECT name FROM docs WHERE kind=? ORDER BY name", (kind,))]


class Store:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = Database(path, _SCHEMA, "the fleet store")

    @contextmanager
    def tx(self) -> Iterator[Tx]:
        with self._db.transaction() as conn:
            yield Tx(conn)

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        with self.tx() as t:
            return t.get(kind, name)

    def list(self, kind: str) -> list[dict[str, Any]]:
        with self.tx() as t:
            return t.list(kind)

    def close(self) -> None:
        self._db.close()
