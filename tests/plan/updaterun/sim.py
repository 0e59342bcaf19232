"""A tiny driver for the pure update-run reducer: a fake clock, counted gate ids, a log of actions."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from typing import Any

from fleetnet.plan.updaterun import (
    Action,
    Event,
    GateApproved,
    MemberInfo,
    MemberUpgradeSucceeded,
    MeshHealthResult,
    RunState,
    StartMemberUpgrade,
    StartRequested,
    Strategy,
    UpdateState,
    UpgradeSpec,
    apply,
    new_run,
    parse_strategy,
    step,
)

TARGET = "1.33.2"
FULL = UpgradeSpec.parse("Full", TARGET)


def member(name: str, group: str | None = None, k8s: str = "1.32.3", network: str | None = None) -> MemberInfo:
    return MemberInfo(name=name, group=group, kubernetes_version=k8s, network=network)


def members_in(groups: dict[str, int], k8s: str = "1.32.3", network: str | None = None) -> list[MemberInfo]:
    """``{"g1": 2, "g2": 1}`` → g1-0, g1-1, g2-0 in those groups."""
    return [member(f"{g}-{i}", g, k8s, network) for g, n in groups.items() for i in range(n)]


def strategy(*stages: dict[str, Any]) -> Strategy:
    return parse_strategy({"stages": list(stages)})


class Sim:
    def __init__(
        self,
        members: Sequence[MemberInfo],
        strategy: Strategy | None = None,
        spec: UpgradeSpec = FULL,
        start: bool = True,
    ) -> None:
        self.run: RunState = new_run("run", spec, members, strategy)
        self.now = 0.0
        self._ids = itertools.count()
        self.actions: list[Action] = []
        if start:
            self.do_start()

    def new_id(self) -> str:
        return f"gate-{next(self._ids)}"

    def step(self) -> list[Action]:
        self.run, actions = step(self.run, self.now, new_id=self.new_id)
        self.actions.extend(actions)
        return actions

    def do(self, event: Event) -> list[Action]:
        self.run = apply(self.run, event, self.now)
        return self.step()

    def do_start(self) -> list[Action]:
        return self.do(StartRequested())

    def tick(self, seconds: float) -> list[Action]:
        self.now += seconds
        return self.step()

    @property
    def state(self) -> UpdateState:
        return self.run.status.state

    def running(self) -> list[str]:
        return [m.name for _, _, m in self.run.members() if m.status.state is UpdateState.RUNNING]

    def member_state(self, name: str) -> UpdateState:
        return self.run.member(name).status.state

    def pending_gates(self) -> list[str]:
        return [g.gate_id for g in self.run.gates() if g.state is UpdateState.PENDING and g.gate_id is not None]

    def checking(self) -> list[str]:
        """Stages whose mesh health check waits for a result."""
        return [
            s.name
            for s in self.run.stages
            if s.mesh_health_check is not None and s.mesh_health_check.status.state is UpdateState.RUNNING
        ]

    def started(self) -> list[str]:
        """Members in the order StartMemberUpgrade asked for them."""
        return [a.member for a in self.actions if isinstance(a, StartMemberUpgrade)]

    def succeed(self, names: Iterable[str]) -> list[Action]:
        out: list[Action] = []
        for n in list(names):
            out += self.do(MemberUpgradeSucceeded(n))
        return out

    def finish_all(self, limit: int = 500) -> None:
        """Approve, wait and succeed until the run rests."""
        for _ in range(limit):
            if self.state not in (UpdateState.RUNNING, UpdateState.PENDING, UpdateState.STOPPING):
                return
            if self.running():
                self.succeed(self.running()[:1])
            elif self.pending_gates():
                self.do(GateApproved(self.pending_gates()[0]))
            elif self.checking():
                self.do(MeshHealthResult(self.checking()[0], True))
            else:
                self.tick(3600)
        raise AssertionError(f"run did not come to rest: {self.state}")
