"""List, then watch: a local copy of one resource kept in step with an API server (client-go's
reflector and informer).

A thread lists the resource, replaces its store with the result, then watches from the list's
resourceVersion; a broken watch resumes from the last version seen, a 410 Expired (or any other
failure) lists again after a short back-off. Bookmarks only move the version. Every change calls
``on_change`` from the informer's thread — consumers set a flag and reconcile elsewhere.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from fleetnet.kube.client import KubeClient
from fleetnet.kube.resources import Resource
from fleetnet.kube.status import ApiError

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped objects
OnChange = Callable[[str, dict[str, Any]], None]  # (event type, object)

WATCH_TIMEOUT = 300
BACKOFF_MIN, BACKOFF_MAX = 0.1, 5.0


def key_of(obj: dict[str, Any]) -> Key:
    md = obj.get("metadata") or {}
    return (str(md.get("namespace") or ""), str(md.get("name")))


def rv_of(obj: dict[str, Any]) -> int:
    try:
        return int((obj.get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


class Informer:
    def __init__(
        self,
        client_factory: Callable[[], KubeClient],
        resource: Resource,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        on_change: OnChange | None = None,
    ) -> None:
        self.client_factory = client_factory
        self.resource = resource
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.on_change = on_change
        self.store: dict[Key, dict[str, Any]] = {}
        self.lock = threading.Lock()
        self.synced = threading.Event()
        self.rv = ""
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ reads (any thread)
    def items(self) -> list[dict[str, Any]]:
        with self.lock:
            return [self.store[k] for k in sorted(self.store)]

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        with self.lock:
            return self.store.get((namespace if self.resource.namespaced else "", name))

    # ------------------------------------------------------------------ writes seen by this process
    def observe(self, typ: str, obj: dict[str, Any]) -> None:
        """Put an object this process just wrote (or deleted) into the store before its event arrives,
        so that the writer reads its own write; an older version arriving later is ignored."""
        k = key_of(obj)
        with self.lock:
            cur = self.store.get(k)
            if typ == "DELETED":
                if cur is not None and rv_of(cur) <= rv_of(obj):
                    del self.store[k]
                return
            if cur is None or rv_of(obj) >= rv_of(cur):
                self.store[k] = obj

    # ------------------------------------------------------------------ the loop
    def start(self) -> Informer:
        self._thread = threading.Thread(target=self._run, name=f"informer-{self.resource.plural}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def wait_synced(self, timeout: float) -> bool:
        return self.synced.wait(timeout)

    def _run(self) -> None:
        backoff = BACKOFF_MIN
        client: KubeClient | None = None
        while not self._stop.is_set():
            try:
                if client is None:
                    client = self.client_factory()
                if not self.rv:
                    self._list(client)
                self._watch(client)
                backoff = BACKOFF_MIN
            except ApiError as e:
                if e.code == 410:
                    self.rv = ""  # too old: list again
                    continue
                self.last_error = str(e)
                log.debug("informer %s: %s", self.resource.plural, e)
                if e.code == 0 and client is not None:  # transport broke: a fresh connection
                    client.close()
                    client = None
                self._stop.wait(backoff)
                backoff = min(BACKOFF_MAX, backoff * 2)
                if e.code not in (0, 410):
                    self.rv = ""
            except Exception as e:  # never let the thread die: log and relist
                self.last_error = str(e)
                log.exception("informer %s failed", self.resource.plural)
                self.rv = ""
                self._stop.wait(backoff)
                backoff = min(BACKOFF_MAX, backoff * 2)
        if client is not None:
            client.close()

    def _list(self, client: KubeClient) -> None:
        items, rv = client.list(
            self.resource, self.namespace, label_selector=self.label_selector, field_selector=self.field_selector
        )
        fresh = {key_of(o): o for o in items}
        with self.lock:
            old = self.store
            self.store = fresh
        self.rv = rv
        self.last_error = None
        self.synced.set()
        if self.on_change is not None:
            for k, o in fresh.items():
                if old.get(k) != o:
                    self.on_change("ADDED" if k not in old else "MODIFIED", o)
            for k, o in old.items():
                if k not in fresh:
                    self.on_change("DELETED", o)

    def _watch(self, client: KubeClient) -> None:
        for typ, obj in client.watch(
            self.resource,
            self.namespace,
            resource_version=self.rv,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
            timeout_seconds=WATCH_TIMEOUT,
        ):
            if self._stop.is_set():
                return
            rv = (obj.get("metadata") or {}).get("resourceVersion")
            if rv:
                self.rv = str(rv)
            if typ == "BOOKMARK":
                continue
            k = key_of(obj)
            with self.lock:
                cur = self.store.get(k)
                if typ == "DELETED":
                    self.store.pop(k, None)
                elif cur is not None and rv_of(cur) > rv_of(obj):
                    continue  # our own newer write is already here
                else:
                    self.store[k] = obj
            if self.on_change is not None:
                self.on_change(typ, obj)
