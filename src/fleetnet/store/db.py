"""The SQLite plumbing shared by the hub's store and each local cluster's object store.

One connection per file, WAL so that readers in other processes (an agent reading its cluster's
objects while the hub writes) never block, and ``BEGIN IMMEDIATE`` transactions so that a
read-modify-write cannot interleave with another writer.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fleetnet.errors import SystemFailure


class Database:
    def __init__(self, path: Path, schema: str, what: str) -> None:
        self.path = path
        try:
            self.conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.executescript(schema)
        except sqlite3.Error as e:
            raise SystemFailure(f"cannot open {what} {path}: {e}.") from e
        self.lock = threading.RLock()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self.lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            else:
                self.conn.execute("COMMIT")

    def close(self) -> None:
        with self.lock:
            self.conn.close()
