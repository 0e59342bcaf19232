"""A stand-in kubelet for controller tests: what the real one reports, without running anything.

Every pod bound to a node gets an address and, unless ``ready`` says otherwise, the status a
kubelet writes through ``/status`` once its containers run (Running, Ready, ContainersReady);
a pod marked for deletion is deleted with grace 0 unless ``hold_deletions`` is set. It is driven
by its own informer, so it reacts to events as the real one does.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from fleetnet.kube.client import KubeClient
from fleetnet.kube.informer import Informer
from fleetnet.kube.resources import REGISTRY
from fleetnet.kube.status import ApiError

PODS = REGISTRY.by_kind("Pod")
assert PODS is not None


def now_rfc3339() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class FakeKubelet:
    def __init__(self, client_factory: Callable[[], KubeClient]) -> None:
        self.client = client_factory()
        self.ready: Callable[[dict[str, Any]], bool] = lambda pod: True
        self.hold_deletions = False
        self._stopping = False
        self._ips = itertools.count(2)
        self._addr: dict[str, str] = {}
        self._work: queue.Queue[tuple[str, str] | None] = queue.Queue()
        self.informer = Informer(client_factory, PODS, on_change=self._changed)
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> FakeKubelet:
        self.informer.start()
        self._thread.start()
        assert self.informer.wait_synced(10)
        return self

    def stop(self) -> None:
        self._stopping = True
        self.informer.stop()
        self._work.put(None)
        self.client.close()

    def _changed(self, typ: str, obj: dict[str, Any]) -> None:
        if typ != "DELETED":
            md = obj["metadata"]
            self._work.put((md["namespace"], md["name"]))

    def poke(self) -> None:
        """Look at every pod again (after changing ``ready`` or ``hold_deletions``)."""
        for p in self.informer.items():
            self._work.put((p["metadata"]["namespace"], p["metadata"]["name"]))

    def _run(self) -> None:
        while True:
            key = self._work.get()
            if key is None:
                return
            try:
                self._sync(*key)
            except ApiError:
                self._work.put(key)  # a conflict: the fresh object is on its way
                time.sleep(0.01)  # a retry pace, not a wait for a condition
            except RuntimeError:
                if self._stopping:  # the client closed under us
                    return
                raise

    def _sync(self, ns: str, name: str) -> None:
        pod = self.informer.get(ns, name)
        if pod is None or not (pod.get("spec") or {}).get("nodeName"):
            return
        md = pod["metadata"]
        if md.get("deletionTimestamp"):
            if not self.hold_deletions:
                self.client.delete(PODS, name, ns, grace_period=0)
            return
        ready = self.ready(pod)
        uid = md["uid"]
        if uid not in self._addr:
            n = next(self._ips)
            self._addr[uid] = f"10.244.{n // 250}.{n % 250 + 2}"
        ip = self._addr[uid]
        status = dict(pod.get("status") or {})
        old = {c["type"]: c for c in status.get("conditions") or []}
        flag = "True" if ready else "False"

        def cond(kind: str, value: str) -> dict[str, Any]:
            c = old.get(kind)
            if c is not None and c.get("status") == value:
                return c
            return {"type": kind, "status": value, "lastProbeTime": None, "lastTransitionTime": now_rfc3339()}

        want = {
            **status,
            "phase": "Running",
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "hostIP": "192.168.0.1",
            "conditions": [
                cond("Initialized", "True"),
                cond("Ready", flag),
                cond("ContainersReady", flag),
                cond("PodScheduled", "True"),
            ],
        }
        want.setdefault("startTime", now_rfc3339())
        if want == status:
            return
        body = dict(pod)
        body["status"] = want
        self.client.replace(body, subresource="status")
