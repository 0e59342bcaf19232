"""The fleet daemon (the hub): store, drivers, controllers and the REST API in one process.

It owns no data path: members' agents and clustermesh-apiservers run as their own processes and
keep working while the hub restarts. Background loops: the mesh state refresher and the process
supervisor (a member process that died is started again, with a back-off).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from fleetnet.hub.catalog import HubCatalog
from fleetnet.hub.fleet import Fleet
from fleetnet.hub.localdriver import LocalDriver
from fleetnet.hub.mesh import MeshController
from fleetnet.hub.paths import FleetPaths
from fleetnet.hub.record import Recorder
from fleetnet.model.member import Member
from fleetnet.store.sqlite import Store

log = logging.getLogger(__name__)

SUPERVISE_BACKOFF = 3.0


class Hub:
    def __init__(self, home: Path) -> None:
        self.paths = FleetPaths(home)
        home.mkdir(parents=True, exist_ok=True)
        self.store = Store(self.paths.store)
        self.recorder = Recorder(self.paths.state)
        self.catalog = HubCatalog()
        self.driver = LocalDriver(self.paths, self.store, self.recorder)
        self.fleet = Fleet(self.store, self.driver, self.catalog)
        self.mesh = MeshController(self.fleet, self.driver)
        self._stop = threading.Event()
        self._dead_since: dict[str, float] = {}
        from fleetnet.hub.updates import UpdateController

        self.updates = UpdateController(self)

    def pods(self, member: Member) -> list[dict[str, Any]]:
        """The member's pods, read through its Kubernetes API."""
        from fleetnet.kube.resources import REGISTRY

        res = REGISTRY.by_kind("Pod")
        assert res is not None
        items, _ = self.driver.kube(member).list(res)
        return items

    @property
    def prefix(self) -> str:
        return self.recorder.record.prefix

    def forget_objects(self, name: str) -> None:
        """Nothing is cached per member beyond the driver's clients (kept for the API's delete)."""
        del name

    def start_background(self) -> None:
        self.mesh.recover()
        threading.Thread(target=self._loop, name="hub-loop", daemon=True).start()
        self.updates.start()

    def _loop(self) -> None:
        ticks = 0
        while not self._stop.wait(0.5):
            ticks += 1
            try:
                self._supervise()
                if ticks % 4 == 0:  # asks every agent: every 2 s is enough for a state shown to people
                    self.mesh.refresh_states()
            except Exception:
                log.exception("background loop")

    def _supervise(self) -> None:
        now = time.monotonic()
        members = self.fleet.list_members()
        due = []
        for m in members:
            roles = ["kube-apiserver", "controller-manager", "agent"] + (
                ["etcd", "exporter"] if m.mesh is not None else []
            )
            dead = [
                r
                for r in roles
                if self.driver.recorder.record.processes.get(f"{r}:{m.name}") and not self.driver.is_running(r, m.name)
            ]
            if not dead:
                self._dead_since.pop(m.name, None)
                continue
            first = self._dead_since.setdefault(m.name, now)
            if now - first >= SUPERVISE_BACKOFF:
                due.append(m)
                self._dead_since.pop(m.name, None)
        if due:
            self.driver.supervise(due)

    def stop(self) -> None:
        self._stop.set()
        self.updates.stop()


def write_pid(paths: FleetPaths) -> None:
    """The pid, and the record ``fleetnet down`` ends the daemon by (however it was started)."""
    from fleetnet.local import procs

    paths.pid.write_text(f"{os.getpid()}\n")
    tmp = paths.daemon_record.with_suffix(".tmp")
    tmp.write_text(json.dumps(procs.own_record().to_dict()))
    tmp.replace(paths.daemon_record)
