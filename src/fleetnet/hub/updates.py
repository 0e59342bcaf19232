"""Update strategies, update runs and gates: the daemon's side of ``plan/updaterun``.

The pure reducer decides everything; this controller keeps runs in the store and carries out what
the reducer asks for. Every change to a run goes the same way, under one lock:

    run = apply(run, event, now)        # a user request (start, stop, skip, approve) or an outcome
    run, actions = step(run, now)       # what may start now
    store run; hand the actions out     # upgrades and mesh checks go to a thread pool

A background loop calls ``step`` for every active run when an after-stage wait ends (and at least
every ``poll`` seconds), and at daemon start it hands out again what ``outstanding`` says a run was
still waiting for, so a run survives a daemon restart: the store holds its whole state after every
change. Members of a group upgrade concurrently on the pool's threads; an outcome that the run no
longer expects (it was stopped, a member was skipped) is a Conflict from the reducer, logged and
dropped.

Upgrading a member is the driver's job (``ClusterDriver.upgrade``: new versions, processes restarted
on them); this module then records the new versions on the member and waits until its agent reports
the new Cilium. The mesh health check of a stage with ``meshHealthCheck`` waits until every network
holding an upgraded member is Connected again and a request from a pod of each member to a pod of
each other member is answered (members without pods are vouched for by their agents' remotes).

Store kinds: ``updatestrategy`` (name → ``{"name", "strategy"}``) and ``updaterun`` (name → the run in
``codec``'s shape). Gates are not stored on their own: they are read off the runs that hold them, so
a gate can never disagree with its run and deleting a run deletes its gates (reference §3.8).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any, Protocol

from fleetnet.errors import Conflict, FleetnetError, InvalidInput, NotFound
from fleetnet.hub.catalog import HubCatalog
from fleetnet.hub.driver import ClusterDriver
from fleetnet.hub.fleet import MEMBER, Fleet
from fleetnet.hub.meshhealth import mesh_problem
from fleetnet.model.member import Member
from fleetnet.model.names import check_resource_name
from fleetnet.plan.updaterun import (
    Action,
    CheckMeshHealth,
    CreateGate,
    Event,
    GateApproved,
    GateRef,
    MemberInfo,
    MemberUpgradeFailed,
    MemberUpgradeSucceeded,
    MeshHealthResult,
    RunState,
    SkipRequested,
    SkipTarget,
    StartMemberUpgrade,
    StartRequested,
    StopRequested,
    Strategy,
    UpdateState,
    UpgradeSpec,
    apply,
    new_run,
    next_wakeup,
    one_by_one,
    outstanding,
    parse_strategy,
    require_valid,
    step,
    strategy_to_json,
)
from fleetnet.plan.updaterun.state import RUN_ACTIVE
from fleetnet.store.sqlite import Store

log = logging.getLogger(__name__)

STRATEGY = "updatestrategy"
RUN = "updaterun"

S = UpdateState
GATE_STATES = ("Pending", "Skipped", "Completed")
GATE_TYPES = ("Approval",)
# Runs whose actions may still be under way (a stopping run waits for its in-flight upgrades).
_MOVING = RUN_ACTIVE | {S.STOPPING}

POLL = 1.0  # seconds between looks at the active runs when no event arrives
AGENT_READY_TIMEOUT = 60.0  # an upgraded member's agent must report its new Cilium within this
MESH_HEALTH_TIMEOUT = 120.0  # like the mesh controller's connect timeout


class UpdateHub(Protocol):
    """What the controller needs of the daemon (``Hub`` has it; tests pass a fake driver)."""

    @property
    def store(self) -> Store: ...

    @property
    def fleet(self) -> Fleet: ...

    @property
    def catalog(self) -> HubCatalog: ...

    @property
    def driver(self) -> ClusterDriver: ...

    def pods(self, member: Member) -> list[dict[str, Any]]: ...

    @property
    def prefix(self) -> str: ...


class _Abandoned(Exception):
    """The daemon is shutting down in the middle of an action; the next start hands it out again."""


class UpdateController:
    def __init__(
        self,
        hub: UpdateHub,
        *,
        clock: Callable[[], float] = time.time,
        workers: int = 32,
        poll: float = POLL,
        agent_timeout: float = AGENT_READY_TIMEOUT,
        mesh_timeout: float = MESH_HEALTH_TIMEOUT,
    ) -> None:
        self.hub = hub
        self.store = hub.store
        self.clock = clock
        self.poll = poll
        self.agent_timeout = agent_timeout
        self.mesh_timeout = mesh_timeout
        self._lock = threading.RLock()  # every run transition: load, apply, step, store, hand out
        self._inflight: set[tuple[str, str]] = set()  # (run, "member:NAME" | "mesh:STAGE") being carried out
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="update")
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # ---------------------------------------------------------------- lifecycle
    def start(self) -> None:
        """Hand out again what runs were waiting for when the daemon stopped, then start the loop."""
        with self._lock:
            for run in self._runs(_MOVING):
                actions = outstanding(run)
                if actions:
                    log.info("update run %s: resuming %d outstanding action(s)", run.name, len(actions))
                self._dispatch(run, actions)
        self._thread = threading.Thread(target=self._loop, name="update-runs", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                wakeup = self.tick()
            except Exception:
                log.exception("update-run loop")
                wakeup = None
            timeout = self.poll if wakeup is None else min(self.poll, max(0.0, wakeup - self.clock()))
            self._wake.wait(timeout)
            self._wake.clear()

    def tick(self) -> float | None:
        """Step every active run now; return when the next after-stage wait ends (None: none runs)."""
        wakeups: list[float] = []
        with self._lock:
            for run in self._runs(RUN_ACTIVE):
                new, actions = step(run, self.clock())
                if new != run:
                    self._save(new)
                self._dispatch(new, actions)
                w = next_wakeup(new)
                if w is not None:
                    wakeups.append(w)
        return min(wakeups, default=None)

    # ---------------------------------------------------------------- strategies
    def put_strategy(self, name: str, data: object) -> dict[str, Any]:
        """Create a strategy or replace its stages (runs made from it keep their own copy)."""
        check_resource_name("update strategy", name, 50)
        doc = {"name": name, "strategy": strategy_to_json(parse_strategy(data))}
        with self.store.tx() as t:
            t.put(STRATEGY, name, doc)
        return doc

    def get_strategy(self, name: str) -> dict[str, Any]:
        doc = self.store.get(STRATEGY, name)
        if doc is None:
            raise NotFound(f"update strategy {name!r} does not exist; `fleetnet updatestrategy list` shows them.")
        return doc

    def list_strategies(self) -> list[dict[str, Any]]:
        return self.store.list(STRATEGY)

    def delete_strategy(self, name: str) -> None:
        with self.store.tx() as t:
            if not t.delete(STRATEGY, name):
                raise NotFound(f"update strategy {name!r} does not exist; `fleetnet updatestrategy list` shows them.")

    # ---------------------------------------------------------------- runs
    def put_run(
        self,
        name: str,
        spec: UpgradeSpec,
        *,
        update_strategy_name: str | None = None,
        stages: object | None = None,
    ) -> dict[str, Any]:
        """Create a run (or replace one that has not started) over the fleet's members as they are now.

        With a strategy name the run takes a copy of that strategy; with ``stages`` it has its own;
        with neither, every member is updated one by one (reference §3.1–3.2).
        """
        check_resource_name("update run", name, 50)
        if update_strategy_name is not None and stages is not None:
            raise InvalidInput("give either --update-strategy-name or --stages, not both.")
        strategy: Strategy | None = None
        if update_strategy_name is not None:
            strategy = parse_strategy(self.get_strategy(update_strategy_name)["strategy"])
        elif stages is not None:
            strategy = parse_strategy(stages)
        infos = [_info(m, m.group) for m in self.hub.fleet.list_members()]
        run = new_run(name, spec, infos, strategy, update_strategy_name)
        with self._lock:
            old = self.store.get(RUN, name)
            if old is not None:
                state = RunState.from_json(old).status.state
                if state is not S.NOT_STARTED:
                    raise Conflict(
                        f"update run {name} is {state} and can no longer be changed; create a run with another name."
                    )
            self._save(run)
        return run.to_json()

    def get_run(self, name: str) -> dict[str, Any]:
        return self._load(name).to_json()

    def list_runs(self) -> list[dict[str, Any]]:
        return self.store.list(RUN)

    def delete_run(self, name: str) -> None:
        """Delete a run and with it its gates; refused while it is moving."""
        with self._lock:
            run = self._load(name)
            if run.status.state in _MOVING:
                raise Conflict(
                    f"update run {name} is {run.status.state}; stop it with `fleetnet updaterun stop {name}` "
                    "and wait until it is Stopped before deleting it."
                )
            with self.store.tx() as t:
                t.delete(RUN, name)

    def start_run(self, name: str) -> dict[str, Any]:
        """Start (or restart, at the first unprocessed member) after checking the run with current versions."""
        with self._lock:
            run = self._load(name)
            if run.status.state in (S.NOT_STARTED, S.STOPPED, S.FAILED):
                self._prevalidate(run)
            return self._transition(run, StartRequested()).to_json()

    def stop_run(self, name: str) -> dict[str, Any]:
        """No new work starts; upgrades under way finish (``Stopping``), then the run is ``Stopped``."""
        with self._lock:
            return self._transition(self._load(name), StopRequested()).to_json()

    def skip(self, name: str, targets: Sequence[str | SkipTarget]) -> dict[str, Any]:
        """Skip ``Type:Name`` targets (Member, Group, Stage, AfterStageWait), all of them or none."""
        parsed = tuple(t if isinstance(t, SkipTarget) else SkipTarget.parse(t) for t in targets)
        with self._lock:
            return self._transition(self._load(name), SkipRequested(parsed)).to_json()

    # ---------------------------------------------------------------- gates
    def list_gates(self, state: str | None = None, gate_type: str | None = None) -> list[dict[str, Any]]:
        if state is not None and state not in GATE_STATES:
            raise InvalidInput(f"gate state {state!r} is not one of {', '.join(GATE_STATES)}.")
        if gate_type is not None and gate_type not in GATE_TYPES:
            raise InvalidInput(f"gate type {gate_type!r} is not one of {', '.join(GATE_TYPES)}.")
        return [
            gate_to_json(ref)
            for run in self._runs()
            for ref in run.gates()
            if ref.gate_id is not None and (state is None or ref.state == state)
        ]

    def get_gate(self, gate_id: str) -> dict[str, Any]:
        return gate_to_json(self._find_gate(gate_id)[1])

    def approve_gate(self, gate_id: str) -> dict[str, Any]:
        """Complete a Pending gate (Azure's only gate mutation); the run moves on at once."""
        with self._lock:
            run, _ = self._find_gate(gate_id)
            new = self._transition(run, GateApproved(gate_id))
            return gate_to_json(next(ref for ref in new.gates() if ref.gate_id == gate_id))

    def _find_gate(self, gate_id: str) -> tuple[RunState, GateRef]:
        for run in self._runs():
            for ref in run.gates():
                if ref.gate_id == gate_id:
                    return run, ref
        raise NotFound(f"gate {gate_id} does not exist; `fleetnet gate list` shows the gates.")

    # ---------------------------------------------------------------- transitions
    def _load(self, name: str) -> RunState:
        doc = self.store.get(RUN, name)
        if doc is None:
            raise NotFound(f"update run {name!r} does not exist; `fleetnet updaterun list` shows them.")
        return RunState.from_json(doc)

    def _save(self, run: RunState) -> None:
        with self.store.tx() as t:
            t.put(RUN, run.name, run.to_json())

    def _runs(self, states: Iterable[UpdateState] | None = None) -> list[RunState]:
        wanted = None if states is None else {str(s) for s in states}
        runs = []
        for doc in self.store.list(RUN):
            if wanted is not None and (doc.get("status") or {}).get("status", {}).get("state") not in wanted:
                continue
            try:
                runs.append(RunState.from_json(doc))
            except InvalidInput:
                log.exception("update run %s in the store is unreadable; leaving it alone", doc.get("name"))
        return runs

    def _transition(self, run: RunState, event: Event) -> RunState:
        """apply, step, store, hand out (the caller holds the lock); a refused event changes nothing."""
        now = self.clock()
        run = apply(run, event, now)
        run, actions = step(run, now)
        self._save(run)
        self._dispatch(run, actions)
        self._wake.set()  # an after-stage wait may have begun: let the loop look at its end
        return run

    def _report(self, run_name: str, key: tuple[str, str], event: Event) -> None:
        """An outcome from the pool; a run that no longer expects it is logged and left alone."""
        with self._lock:
            self._inflight.discard(key)
            try:
                self._transition(self._load(run_name), event)
            except (Conflict, NotFound) as e:
                log.warning("update run %s: %s ignored: %s", run_name, type(event).__name__, e)

    def _dispatch(self, run: RunState, actions: Iterable[Action]) -> None:
        for action in actions:
            match action:
                case StartMemberUpgrade(member=member):
                    self._submit(run.name, f"member:{member}", self._upgrade, run.name, run.spec, member)
                case CheckMeshHealth(stage=stage, networks=networks):
                    self._submit(run.name, f"mesh:{stage}", self._check_mesh, run.name, stage, networks)
                case CreateGate(gate_id=gate_id, stage=stage, group=group, timing=timing):
                    where = f"stage {stage}" + (f", group {group}" if group else "")
                    log.info(
                        "update run %s waits for approval of gate %s (%s, %s): `fleetnet gate approve %s`",
                        run.name,
                        gate_id,
                        where,
                        timing,
                        gate_id,
                    )

    def _submit(self, run_name: str, what: str, fn: Callable[..., Event], *args: Any) -> None:
        key = (run_name, what)
        if key in self._inflight or self._stopping.is_set():
            return  # already being done; or the daemon is stopping and the next start does it
        self._inflight.add(key)

        def work() -> None:
            try:
                event = fn(*args)
            except _Abandoned:
                with self._lock:
                    self._inflight.discard(key)
                return
            except Exception as e:  # a bug must not leave the run waiting forever
                log.exception("update run %s: %s", run_name, what)
                event = _failure(what, f"{type(e).__name__}: {e}")
            self._report(run_name, key, event)

        self._pool.submit(work)

    # ---------------------------------------------------------------- pre-validation
    def _prevalidate(self, run: RunState) -> None:
        """Refuse a start with one sentence if the work left would break a version rule *now*.

        The members still to do keep their places in the run's own strategy copy; members done or
        skipped, and members outside the run, count with the versions they run now.
        """
        members = {m.name: m for m in self.hub.fleet.list_members()}
        strategy = run.strategy or one_by_one()
        specs = {s.name: s for s in strategy.stages}
        group_of: dict[str, str] = {}
        stages = []
        for stage in run.stages:
            if stage.skip_requested or stage.status.state in (S.COMPLETED, S.SKIPPED):
                continue
            groups = []
            gspecs = {g.name: g for g in specs[stage.name].groups}
            for group in stage.groups:
                todo = [m for m in group.members if m.status.state not in (S.COMPLETED, S.SKIPPED)]
                if group.skip_requested or not todo:
                    continue
                for m in todo:
                    if m.name not in members:
                        raise InvalidInput(
                            f"update run {run.name} cannot start: member {m.name} (stage {stage.name}) is no "
                            f"longer in the fleet; skip it with `fleetnet updaterun skip {run.name} --targets "
                            f"Member:{m.name}`."
                        )
                    group_of[m.name] = group.name
                # concurrency does not change what versions can meet; a smaller group must still parse
                groups.append(replace(gspecs[group.name], max_concurrency=None))
            if groups:
                stages.append(replace(specs[stage.name], groups=tuple(groups)))
        if not stages:
            return
        infos = [_info(m, group_of.get(m.name)) for m in members.values()]
        try:
            require_valid(run.spec, Strategy(stages=tuple(stages)), infos, self.hub.catalog.catalog)
        except InvalidInput as e:
            raise InvalidInput(f"update run {run.name} cannot start: {e}") from e

    # ---------------------------------------------------------------- upgrading one member
    def _upgrade(self, run_name: str, spec: UpgradeSpec, name: str) -> Event:
        try:
            member = self.hub.fleet.get_member(name)
        except NotFound:
            return MemberUpgradeFailed(name, f"member {name} is no longer in the fleet.")
        target = spec.kubernetes_version or member.kubernetes_version  # NodeImageOnly keeps the version
        try:
            cilium = self.hub.catalog.cilium_for(target) if spec.kubernetes_version else member.cilium_version
        except InvalidInput as e:
            return MemberUpgradeFailed(name, str(e))
        log.info("update run %s: upgrading %s to Kubernetes %s (Cilium %s)", run_name, name, target, cilium)
        began = time.monotonic()
        try:
            self.hub.driver.upgrade(member, target, cilium)
        except FleetnetError as e:
            return MemberUpgradeFailed(name, f"upgrading {name} to Kubernetes {target} failed: {e}")
        self._record_versions(name, target, cilium)
        restarted = time.monotonic()
        if member.local is not None and member.local.network_dataplane != "cilium":
            return MemberUpgradeSucceeded(name)  # no agent to wait for
        deadline = time.monotonic() + self.agent_timeout
        last = "it did not answer"
        while True:
            try:
                status = self.hub.driver.agent_get(member, "/v1/status")
                running = str(((status or {}).get("version") or {}).get("cilium"))
                if running == cilium:
                    now = time.monotonic()
                    log.info(
                        "update run %s: %s upgraded in %.1f s (restarts %.1f s, agent ready %.1f s later)",
                        run_name,
                        name,
                        now - began,
                        restarted - began,
                        now - restarted,
                    )
                    return MemberUpgradeSucceeded(name)
                last = f"it reported Cilium {running}"
            except FleetnetError as e:
                last = str(e)
            if time.monotonic() > deadline:
                return MemberUpgradeFailed(
                    name,
                    f"{name} was upgraded to Kubernetes {target}, but its agent did not report Cilium {cilium} "
                    f"within {self.agent_timeout:.0f} s ({last}); see `fleetnet cilium {name} status`.",
                )
            if self._stopping.wait(0.1):
                raise _Abandoned

    def _record_versions(self, name: str, kubernetes: str, cilium: str) -> None:
        with self.store.tx() as t:
            d = t.get(MEMBER, name)
            if d is not None:
                m = Member.from_dict(d)
                t.put(MEMBER, name, replace(m, kubernetes_version=kubernetes, cilium_version=cilium).to_dict())

    # ---------------------------------------------------------------- the mesh health check
    def _check_mesh(self, run_name: str, stage: str, networks: tuple[str, ...]) -> Event:
        deadline = time.monotonic() + self.mesh_timeout
        while True:
            problem, probes = mesh_problem(self.hub.fleet, self.hub.driver, self.hub.pods, networks, self.hub.prefix)
            if problem is None:
                log.info("update run %s: mesh health after stage %s: ok (%d probes)", run_name, stage, probes)
                return MeshHealthResult(
                    stage,
                    True,
                    f"network(s) {', '.join(networks)}: every member Connected with every remote ready; "
                    f"{probes} cross-cluster request(s) answered.",
                )
            if time.monotonic() > deadline:
                return MeshHealthResult(stage, False, f"{problem} (still so after {self.mesh_timeout:.0f} s)")
            if self._stopping.wait(0.5):
                raise _Abandoned


def _info(m: Member, group: str | None) -> MemberInfo:
    return MemberInfo(
        name=m.name,
        group=group,
        kubernetes_version=m.kubernetes_version,
        cilium_version=m.cilium_version,
        network=None if m.mesh is None else m.mesh.profile,
    )


def _failure(what: str, message: str) -> Event:
    kind, _, name = what.partition(":")
    if kind == "member":
        return MemberUpgradeFailed(name, message)
    return MeshHealthResult(name, False, message)


def gate_to_json(ref: GateRef) -> dict[str, Any]:
    """Azure's gate resource (reference §3.9), read off the run that holds it."""
    status = ref.gate.status
    return {
        "name": ref.gate_id,
        "properties": {
            "displayName": ref.gate.display_name,
            "gateType": "Approval",
            "state": str(ref.state),
            "target": {
                "id": f"updateRuns/{ref.run}",
                "updateRunProperties": {
                    "name": ref.run,
                    "stage": ref.stage,
                    "group": ref.group,
                    "timing": str(ref.timing),
                },
            },
            "startTime": status.start_time,
            "completedTime": status.completed_time,
        },
    }
