"""The mesh controller against a fake driver (the seam where clusters are touched): what an apply
decides and records, leaving, the profile roll-up, and the recovery of an apply cut by a restart."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from fleetnet.errors import Conflict
from fleetnet.hub.catalog import HubCatalog
from fleetnet.hub.driver import PeerInfo, RemoteStatus
from fleetnet.hub.fleet import Fleet
from fleetnet.hub.mesh import OPERATION, MeshController
from fleetnet.model.member import Member
from fleetnet.model.profile import ProfileOptions
from fleetnet.pki.certs import CertKeyPair
from fleetnet.store.sqlite import Store
from tests.support.wait import wait_for


class FakeDriver:
    """Records what the controller asks; agents report ready for exactly the peers they were given."""

    def __init__(self) -> None:
        self.peers: dict[str, list[str]] = {}
        self.options: dict[str, ProfileOptions] = {}
        self.joined: list[str] = []
        self.left: list[str] = []
        self.ready = True
        self.lock = threading.Lock()

    def create_cluster(self, member: Member) -> None: ...

    def delete_cluster(self, member: Member) -> None: ...

    def join(self, member: Member, cluster_id: int, ca: CertKeyPair, options: ProfileOptions, profile: str) -> PeerInfo:
        with self.lock:
            self.joined.append(member.name)
        return PeerInfo(member.name, cluster_id, f"https://{member.name}:2379")

    def peer_info(self, member: Member) -> PeerInfo:
        assert member.mesh is not None
        return PeerInfo(member.name, member.mesh.cilium_id, f"https://{member.name}:2379")

    def set_options(self, member: Member, options: ProfileOptions) -> None:
        self.options[member.name] = options

    def set_peers(self, member: Member, ca: CertKeyPair, peers: Sequence[PeerInfo]) -> None:
        with self.lock:
            self.peers[member.name] = sorted(p.name for p in peers)

    def leave(self, member: Member) -> None:
        with self.lock:
            self.left.append(member.name)
            self.peers.pop(member.name, None)

    def remote_status(self, member: Member) -> list[RemoteStatus] | None:
        return [RemoteStatus(p, self.ready, True, None) for p in self.peers.get(member.name, [])]

    def agent_get(self, member: Member, path: str) -> Any:
        return {}

    def upgrade(self, member: Member, kubernetes_version: str, cilium_version: str) -> None: ...


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Fleet, MeshController, FakeDriver]:
    driver = FakeDriver()
    fleet = Fleet(Store(tmp_path / "fleet.db"), driver, HubCatalog())  # type: ignore[arg-type]
    for name in ("c1", "c2", "c3"):
        fleet.create_local_member(name, labels={"network": "blue"})
    fleet.create_local_member("tun", labels={"network": "blue"}, routing_mode="tunnel")
    return fleet, MeshController(fleet, driver, connect_timeout=5.0), driver  # type: ignore[arg-type]


def apply(mesh: MeshController, name: str) -> dict[str, Any]:
    op = mesh.start_apply(name)
    return dict(wait_for(lambda: (o := mesh.get_operation(op["id"]))["status"] != "Running" and o, timeout=10))


def states(fleet: Fleet) -> dict[str, tuple[str, int] | None]:
    return {m.name: None if m.mesh is None else (m.mesh.state, m.mesh.cilium_id) for m in fleet.list_members()}


def test_apply_joins_selected_members_and_fails_the_unfit(setup: tuple[Fleet, MeshController, FakeDriver]) -> None:
    fleet, mesh, driver = setup
    fleet.create_profile("blue", "network=blue")
    rows = mesh.what_if("blue")
    assert [(r.action, r.name) for r in rows] == [("Add", "c1"), ("Add", "c2"), ("Add", "c3"), ("Error", "tun")]
    assert driver.joined == []  # what-if changes nothing
    op = apply(mesh, "blue")
    assert op["status"] == "Succeeded"
    s = states(fleet)
    assert {n: v for n, v in s.items() if n != "tun"} == {
        "c1": ("Connected", 1),
        "c2": ("Connected", 2),
        "c3": ("Connected", 3),
    }
    assert s["tun"] is not None and s["tun"][0] == "Failed"
    assert "native routing" in (fleet.get_member("tun").mesh.error or "")  # type: ignore[union-attr]
    assert fleet.get_member("tun").mesh.error == rows[3].error  # type: ignore[union-attr]  # the what-if's sentence
    assert driver.peers == {"c1": ["c2", "c3"], "c2": ["c1", "c3"], "c3": ["c1", "c2"]}
    assert fleet.get_profile("blue").status.state == "Degraded"  # one member failed
    assert fleet.get_profile("blue").status.last_applied_selector == "network=blue"


def test_leaving_frees_the_id_and_tells_the_others(setup: tuple[Fleet, MeshController, FakeDriver]) -> None:
    fleet, mesh, driver = setup
    fleet.update_member("tun", labels={})
    fleet.create_profile("blue", "network=blue")
    apply(mesh, "blue")
    fleet.update_member("c2", labels={"network": "none"})
    assert [(r.action, r.name) for r in mesh.what_if("blue")] == [("-", "c1"), ("Remove", "c2"), ("-", "c3")]
    apply(mesh, "blue")
    assert states(fleet)["c2"] is None and driver.left == ["c2"]
    assert driver.peers == {"c1": ["c3"], "c3": ["c1"]}
    assert fleet.get_profile("blue").status.state == "Connected"
    fleet.update_member("tun", labels={"network": "blue"})
    fleet.create_member_again = None
    fleet.update_member("c2", labels={"network": "blue"})
    apply(mesh, "blue")
    assert states(fleet)["c2"] == ("Connected", 2)  # the lowest free id again


def test_options_reach_every_member_on_apply(setup: tuple[Fleet, MeshController, FakeDriver]) -> None:
    fleet, mesh, driver = setup
    fleet.create_profile("blue", "network=blue")
    apply(mesh, "blue")
    fleet.create_profile("blue", "network=blue", {"serviceCacheTtlSeconds": 5})
    apply(mesh, "blue")
    assert {driver.options[n].service_cache_ttl_seconds for n in ("c1", "c2", "c3")} == {5.0}


def test_second_apply_while_one_runs_is_refused(setup: tuple[Fleet, MeshController, FakeDriver]) -> None:
    fleet, mesh, driver = setup
    fleet.create_profile("blue", "network=blue")
    driver.ready = False  # agents never report ready: the first apply keeps waiting
    op = mesh.start_apply("blue")
    with pytest.raises(Conflict, match="being applied"):
        mesh.start_apply("blue")
    driver.ready = True
    wait_for(lambda: mesh.get_operation(op["id"])["status"] != "Running", timeout=10)


def test_recovery_after_a_restart_mid_apply(setup: tuple[Fleet, MeshController, FakeDriver]) -> None:
    """A daemon that died during an apply: the operation is marked failed, Connecting members become
    Connected once their agents report every peer, Disconnecting ones finish leaving."""
    fleet, mesh, driver = setup
    fleet.update_member("tun", labels={})
    fleet.create_profile("blue", "network=blue")
    apply(mesh, "blue")
    # what the store holds when the daemon died in the middle: a running operation, members half-way
    from dataclasses import replace

    with fleet.store.tx() as t:
        t.put(OPERATION, "op-1", {"id": "op-1", "status": "Running"})
        for name, state in (("c1", "Connecting"), ("c2", "Disconnecting")):
            m = Member.from_dict(t.get("member", name))  # type: ignore[arg-type]
            assert m.mesh is not None
            t.put("member", name, m.with_mesh(replace(m.mesh, state=state)).to_dict())  # type: ignore[arg-type]
    restarted = MeshController(fleet, driver, connect_timeout=5.0)  # type: ignore[arg-type]
    restarted.recover()
    assert restarted.get_operation("op-1")["status"] == "Failed"
    restarted.refresh_states()
    s = states(fleet)
    assert s["c2"] is None and "c2" in driver.left
    assert s["c1"] == ("Connected", 1) and s["c3"] == ("Connected", 3)
    assert driver.peers == {"c1": ["c3"], "c3": ["c1"]}
    assert fleet.get_profile("blue").status.state == "Connected"
