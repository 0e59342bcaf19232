"""Applying cross-cluster networks: the hub's main control flow.

``apply`` runs as a long-running operation: it takes the what-if's own decision (rows,
prerequisites, Cilium ids: ``plan/whatif.py``, so the what-if predicts every refusal), deploys
each newcomer's clustermesh-apiserver, gives every member the list of its peers (Cilium's
``cilium-clustermesh`` format) and waits until every agent reports every remote ready. Members
that fail a prerequisite or time out end ``Failed`` with one reason while the others proceed.
Independent members are configured in parallel.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from fleetnet.errors import Conflict
from fleetnet.hub.driver import ClusterDriver, PeerInfo
from fleetnet.hub.fleet import MEMBER, PROFILE, Fleet
from fleetnet.model.member import Member, MeshProperties, MeshState
from fleetnet.model.profile import ClusterMeshProfile
from fleetnet.pki.certs import CertKeyPair, new_ca
from fleetnet.plan.selector import parse_selector
from fleetnet.plan.whatif import NetworkPlan, PlanRow, plan_network
from fleetnet.store.sqlite import Tx

log = logging.getLogger(__name__)

OPERATION = "operation"
NETWORK_CA = "network-ca"


def profile_state(members: list[Member]) -> str:
    if not members:
        return "NotConnected"
    states = [m.mesh.state for m in members if m.mesh is not None]
    if all(s == "Connected" for s in states):
        return "Connected"
    if all(s == "Failed" for s in states):
        return "Failed"
    if any(s == "Connecting" for s in states):
        return "Applying"
    return "Degraded"


class MeshController:
    def __init__(self, fleet: Fleet, driver: ClusterDriver, connect_timeout: float = 120.0) -> None:
        self.fleet = fleet
        self.store = fleet.store
        self.driver = driver
        self.connect_timeout = connect_timeout
        self._applying: set[str] = set()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="mesh")

    # ---------------------------------------------------------------- what-if
    def what_if(self, name: str) -> list[PlanRow]:
        return list(self._plan(name, self.fleet.get_profile(name), self.fleet.list_members()).rows)

    def _plan(self, name: str, profile: ClusterMeshProfile, members: list[Member]) -> NetworkPlan:
        """The one decision both the what-if and the apply take, so they never disagree."""
        return plan_network(
            name,
            parse_selector(profile.member_selector),
            members,
            self.fleet.catalog.is_known,
            observed=self._observe(),
        )

    def _observe(self) -> dict[str, str]:
        """What keeps a member out that only its cluster can tell (an unreachable member, say), as one
        sentence by member name. The driver interface has no such question yet, so nothing for now."""
        return {}

    # ---------------------------------------------------------------- apply
    def start_apply(self, name: str, on_done: Callable[[], None] | None = None) -> dict[str, Any]:
        profile = self.fleet.get_profile(name)
        with self._lock:
            if name in self._applying:
                raise Conflict(
                    f"cross-cluster network {name!r} is being applied already; wait for that apply to finish."
                )
            self._applying.add(name)
        op_id = str(uuid.uuid4())
        op = {
            "id": op_id,
            "kind": "apply",
            "target": name,
            "status": "Running",
            "startTime": time.time(),
            "endTime": None,
            "rows": [],
            "error": None,
        }
        with self.store.tx() as t:
            t.put(OPERATION, op_id, op)
            t.put(PROFILE, name, profile.with_status(state="Applying", last_operation_id=op_id).to_dict())

        def run() -> None:
            try:
                self._apply(name, op_id)
                self._finish_op(op_id, "Succeeded", None)
            except Exception as e:
                log.exception("apply of %s failed", name)
                self._finish_op(op_id, "Failed", str(e))
                with self.store.tx() as t:
                    d = t.get(PROFILE, name)
                    if d is not None:
                        p = ClusterMeshProfile.from_dict(d)
                        t.put(PROFILE, name, p.with_status(state="Failed", last_operation_error=str(e)).to_dict())
            finally:
                with self._lock:
                    self._applying.discard(name)
                if on_done:
                    on_done()

        threading.Thread(target=run, name=f"apply-{name}", daemon=True).start()
        return op

    def _finish_op(self, op_id: str, status: str, error: str | None) -> None:
        with self.store.tx() as t:
            op = t.get(OPERATION, op_id) or {"id": op_id}
            op.update(status=status, error=error, endTime=time.time())
            t.put(OPERATION, op_id, op)

    def get_operation(self, op_id: str) -> dict[str, Any]:
        from fleetnet.errors import NotFound

        op = self.store.get(OPERATION, op_id)
        if op is None:
            raise NotFound(f"operation {op_id} does not exist.")
        return op

    def network_ca(self, name: str) -> CertKeyPair:
        """One CA per network, made at its first apply and kept while the profile exists."""
        d = self.store.get(NETWORK_CA, name)
        if d is not None:
            return CertKeyPair(cert_pem=d["cert"].encode(), key_pem=d["key"].encode())
        ca = new_ca(f"fleetnet {name} CA")
        with self.store.tx() as t:
            existing = t.get(NETWORK_CA, name)
            if existing is not None:
                return CertKeyPair(cert_pem=existing["cert"].encode(), key_pem=existing["key"].encode())
            t.put(NETWORK_CA, name, {"cert": ca.cert_pem.decode(), "key": ca.key_pem.decode()})
        return ca

    def _set_mesh(self, name: str, **changes: Any) -> Member:
        with self.store.tx() as t:
            m = Member.from_dict(t.get(MEMBER, name))  # type: ignore[arg-type]
            assert m.mesh is not None
            m = m.with_mesh(replace(m.mesh, last_updated_at=time.time(), **changes))
            t.put(MEMBER, name, m.to_dict())
        return m

    @staticmethod
    def _record(
        t: Tx, m: Member, name: str, op_id: str, now: float, state: MeshState, cilium_id: int, error: str | None
    ) -> None:
        """A member's mesh properties as this apply decided them (a member already in the network keeps
        the rest of its properties)."""
        if m.mesh is not None and m.mesh.profile == name:
            mesh = replace(
                m.mesh, state=state, cilium_id=cilium_id, error=error, last_updated_at=now, last_operation_id=op_id
            )
        else:
            mesh = MeshProperties(
                profile=name,
                cilium_id=cilium_id,
                cilium_name=m.name,
                state=state,
                last_updated_at=now,
                error=error,
                last_operation_id=op_id,
            )
        t.put(MEMBER, m.name, m.with_mesh(mesh).to_dict())

    def _apply(self, name: str, op_id: str) -> None:
        now = time.time()
        # 1. decide, in one transaction, with the what-if's own decision: rows, ids, new states
        with self.store.tx() as t:
            profile = ClusterMeshProfile.from_dict(t.get(PROFILE, name))  # type: ignore[arg-type]
            members = [Member.from_dict(d) for d in t.list(MEMBER)]
            plan = self._plan(name, profile, members)
            by_name = {m.name: m for m in members}
            removes = [by_name[n] for n in plan.leaving]
            for mname, cilium_id in plan.joining.items():
                self._record(t, by_name[mname], name, op_id, now, "Connecting", cilium_id, None)
            for mname, reason in plan.failed.items():
                m = by_name[mname]
                cilium_id = m.mesh.cilium_id if m.mesh is not None and m.mesh.profile == name else 0
                self._record(t, m, name, op_id, now, "Failed", cilium_id, reason)
            for m in removes:
                assert m.mesh is not None
                t.put(
                    MEMBER, m.name, m.with_mesh(replace(m.mesh, state="Disconnecting", last_updated_at=now)).to_dict()
                )
            op = t.get(OPERATION, op_id) or {}
            op["rows"] = [{"action": r.action, "name": r.name, "error": r.error} for r in plan.rows]
            t.put(OPERATION, op_id, op)
        ca = self.network_ca(name)
        # 2. effects: newcomers' apiservers up, leavers' down, in parallel
        by_name = {m.name: m for m in self.fleet.list_members()}
        joining = [m for m in by_name.values() if m.mesh and m.mesh.profile == name and m.mesh.state == "Connecting"]
        endpoints: dict[str, PeerInfo] = {}

        def join(m: Member) -> tuple[str, PeerInfo | None, str | None]:
            assert m.mesh is not None
            try:
                return m.name, self.driver.join(m, m.mesh.cilium_id, ca, profile.options, name), None
            except Exception as e:
                log.exception("joining %s failed", m.name)
                return m.name, None, f"deploying the clustermesh-apiserver of {m.name} failed: {e}"

        def leave(m: Member) -> None:
            try:
                self.driver.leave(m)
            except Exception:
                log.exception("leaving %s failed", m.name)

        for mname, info, err in self._pool.map(join, joining):
            if info is not None:
                endpoints[mname] = info
            else:
                self._set_mesh(mname, state="Failed", error=err)
        list(self._pool.map(leave, removes))
        for m in removes:
            with self.store.tx() as t:
                d = t.get(MEMBER, m.name)
                if d is not None:
                    t.put(MEMBER, m.name, Member.from_dict(d).with_mesh(None).to_dict())
        # 3. every member of the network gets the list of every other healthy member
        self.fan_out(name, ca, endpoints)
        # 4. wait until the agents report every remote ready
        self.wait_connected(name, op_id)
        with self.store.tx() as t:
            p = ClusterMeshProfile.from_dict(t.get(PROFILE, name))  # type: ignore[arg-type]
            net = [Member.from_dict(d) for d in t.list(MEMBER)]
            net = [m for m in net if m.mesh is not None and m.mesh.profile == name]
            t.put(
                PROFILE,
                name,
                p.with_status(
                    state=profile_state(net),
                    last_applied_selector=profile.member_selector,
                    last_operation_error=None,
                ).to_dict(),
            )

    def peer_info(self, m: Member) -> PeerInfo:
        assert m.mesh is not None
        return self.driver.peer_info(m)  # type: ignore[attr-defined]

    def fan_out(self, name: str, ca: CertKeyPair, known: dict[str, PeerInfo] | None = None) -> None:
        members = [
            m
            for m in self.fleet.network_members(name)
            if m.mesh is not None and m.mesh.state != "Failed" and m.mesh.state != "Disconnecting"
        ]
        infos = {m.name: (known or {}).get(m.name) or self.peer_info(m) for m in members}
        options = self.fleet.get_profile(name).options

        def give(m: Member) -> None:
            # the network's options may have changed since a member joined: each apply brings them
            self.driver.set_options(m, options)
            self.driver.set_peers(m, ca, [infos[p.name] for p in members if p.name != m.name])

        list(self._pool.map(give, members))

    def wait_connected(self, name: str, op_id: str) -> None:
        deadline = time.monotonic() + self.connect_timeout
        while True:
            pending = [m for m in self.fleet.network_members(name) if m.mesh and m.mesh.state == "Connecting"]
            if not pending:
                return
            expected = {m.name for m in self.fleet.network_members(name) if m.mesh and m.mesh.state != "Failed"}
            for m in pending:
                status = self.driver.remote_status(m)
                if status is None:
                    continue
                ready = {s.name for s in status if s.ready}
                if expected - {m.name} <= ready:
                    self._set_mesh(m.name, state="Connected", error=None)
            if time.monotonic() > deadline:
                for m in pending:
                    self._set_mesh(
                        m.name,
                        state="Failed",
                        error=(
                            f"member {m.name} did not connect to every peer within {self.connect_timeout:.0f} s; "
                            "see `fleetnet cilium " + m.name + " clustermesh status`."
                        ),
                    )
                return
            time.sleep(0.05)

    # ---------------------------------------------------------------- recovery and background status
    def recover(self) -> None:
        """After a daemon restart: an apply that was running is over (it cannot be resumed half-way),
        so its operation is marked failed; its members are finished by ``refresh_states``."""
        with self.store.tx() as t:
            for op in t.list(OPERATION):
                if op.get("status") == "Running":
                    op.update(
                        status="Failed",
                        endTime=time.time(),
                        error="the fleet daemon restarted during this operation; apply the network again.",
                    )
                    t.put(OPERATION, op["id"], op)

    def _settle(self, profile: str, members: list[Member]) -> None:
        """Members left half-way by an interrupted apply: Connecting ones become Connected once their
        agent reports every peer ready; Disconnecting ones complete their leave."""
        leaving = [m for m in members if m.mesh is not None and m.mesh.state == "Disconnecting"]
        for m in leaving:
            self.driver.leave(m)
            with self.store.tx() as t:
                d = t.get(MEMBER, m.name)
                if d is not None:
                    t.put(MEMBER, m.name, Member.from_dict(d).with_mesh(None).to_dict())
        if leaving:
            self.fan_out(profile, self.network_ca(profile))
        expected = {m.name for m in members if m.mesh is not None and m.mesh.state not in ("Failed", "Disconnecting")}
        for m in members:
            if m.mesh is None or m.mesh.state != "Connecting":
                continue
            status = self.driver.remote_status(m)
            if status is not None and expected - {m.name} <= {s.name for s in status if s.ready}:
                self._set_mesh(m.name, state="Connected", error=None)

    def refresh_states(self) -> None:
        """Profile state follows the agents between applies: Degraded while a remote is not ready.

        Holds the apply lock throughout, so an apply cannot start between reading and writing a state
        (it would otherwise be overwritten while it runs)."""
        for p in self.fleet.list_profiles():
            with self._lock:
                if p.name in self._applying:
                    continue
                self._refresh(p.name)

    def _refresh(self, name: str) -> None:
        members = self.fleet.network_members(name)
        if any(m.mesh is not None and m.mesh.state in ("Connecting", "Disconnecting") for m in members):
            self._settle(name, members)
            members = self.fleet.network_members(name)
        state = profile_state(members)
        if state == "Connected":
            for m in members:
                status = self.driver.remote_status(m)
                if status is not None and not all(s.ready for s in status):
                    state = "Degraded"
                    break
        with self.store.tx() as t:
            d = t.get(PROFILE, name)
            if d is not None:
                current = ClusterMeshProfile.from_dict(d)
                if current.status.state != state:
                    t.put(PROFILE, name, current.with_status(state=state).to_dict())
