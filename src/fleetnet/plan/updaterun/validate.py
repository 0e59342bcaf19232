"""Pre-validation: refuse an update run before it touches a member, not halfway through.

Cilium comes bundled with Kubernetes (seed, "Updating cross-cluster networking"), so upgrading a
member's Kubernetes also moves its Cilium, and Cilium's ClusterMesh supports peers at most one
minor version apart. Besides the catalog's own rules (known target, no downgrade, no skipped
minor), this walks the run's stage order and refuses it if, at any point, two members of one
cross-cluster network could run Cilium versions more than one minor apart.

The walk: while stage k runs, any subset of its members may already be upgraded, members of
earlier stages are upgraded (or, where both their group and stage tolerate failures, may have
failed and still run the old version), and members of later stages or outside the run are not.
A gap that exists before the run and that the run does not widen is not the run's to refuse.
Re-run this with current versions before restarting a run that was stopped or that failed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fleetnet.errors import InvalidInput
from fleetnet.plan.updaterun.placement import PlannedStage, assign
from fleetnet.plan.updaterun.strategy import (
    Amount,
    MemberInfo,
    Strategy,
    UpgradeSpec,
    UpgradeType,
)
from fleetnet.plan.versions import Catalog, CiliumVersion

MAX_CILIUM_SKEW = 1  # minor versions between ClusterMesh peers


@dataclass(frozen=True, slots=True)
class _Plan:
    """Where a member sits in the run and which Cilium it runs before and after its upgrade."""

    member: MemberInfo
    before: CiliumVersion
    after: CiliumVersion
    stage: int | None  # None: not upgraded by this run (outside it, or nothing to change)
    may_fail_over: bool  # its failure would not stop the run, so it may stay on `before`


def prevalidate(
    spec: UpgradeSpec, strategy: Strategy | None, members: Sequence[MemberInfo], catalog: Catalog
) -> list[str]:
    """Every reason to refuse the run, one sentence each naming the member and the stage; [] means go.

    ``members`` is the whole fleet with current versions (members outside the run still count for
    the cross-cluster rule). Structural faults (a group without members...) raise InvalidInput.
    """
    planned = assign(strategy, members)
    if spec.type is UpgradeType.NODE_IMAGE_ONLY or spec.kubernetes_version is None:
        return []  # neither Kubernetes nor Cilium changes
    target = spec.kubernetes_version
    problems: list[str] = []
    stage_of: dict[str, int] = {}
    tolerant: dict[str, bool] = {}
    for k, ps in enumerate(planned):
        stage_tolerates = _allowed(ps.spec.max_allowed_failures, len(ps.members)) > 0
        for pg in ps.groups:
            group_tolerates = _allowed(pg.spec.max_allowed_failures, len(pg.members)) > 0
            for m in pg.members:
                stage_of[m.name] = k
                tolerant[m.name] = stage_tolerates and group_tolerates
                why = catalog.can_upgrade(m.kubernetes_version, target)
                if why is not None:
                    problems.append(f"member {m.name} in stage {ps.spec.name}: {why}")
    plans, unknown = _plans(members, catalog, target, stage_of, tolerant)
    problems.extend(unknown)
    problems.extend(_skew_problems(plans, planned))
    return problems


def require_valid(
    spec: UpgradeSpec, strategy: Strategy | None, members: Sequence[MemberInfo], catalog: Catalog
) -> None:
    """``prevalidate``, raising InvalidInput with the first problem."""
    problems = prevalidate(spec, strategy, members, catalog)
    if problems:
        more = f" ({len(problems) - 1} more problem(s) not shown)" if len(problems) > 1 else ""
        raise InvalidInput(problems[0] + more)


def _allowed(amount: Amount | None, n: int) -> int:
    return 0 if amount is None else amount.ceil_of(n)


def _plans(
    members: Sequence[MemberInfo],
    catalog: Catalog,
    target: str,
    stage_of: dict[str, int],
    tolerant: dict[str, bool],
) -> tuple[list[_Plan], list[str]]:
    plans: list[_Plan] = []
    problems: list[str] = []
    for m in sorted(members, key=lambda m: m.name):
        if m.network is None:
            continue
        before = _current_cilium(m, catalog)
        if before is None:
            problems.append(
                f"member {m.name} of network {m.network} runs Kubernetes {m.kubernetes_version}, which is not in "
                "the version catalog, and reports no Cilium version, so the run cannot be checked against it; "
                "record its Cilium version or upgrade it first."
            )
            continue
        stage = stage_of.get(m.name)
        current, goal = catalog.entry(m.kubernetes_version), catalog.entry(target)
        changes = (
            stage is not None
            and current is not None
            and goal is not None
            and current.kubernetes != goal.kubernetes
            and catalog.can_upgrade(current.kubernetes, goal.kubernetes) is None
        )
        # A member outside the run, already at the target, or refused above keeps what it runs.
        after = goal.cilium if changes and goal is not None else before
        plans.append(_Plan(m, before, after, stage if changes else None, tolerant.get(m.name, False)))
    return plans, problems


def _current_cilium(m: MemberInfo, catalog: Catalog) -> CiliumVersion | None:
    if m.cilium_version:
        try:
            return CiliumVersion.parse(m.cilium_version)
        except InvalidInput:
            pass
    entry = catalog.entry(m.kubernetes_version)
    return None if entry is None else entry.cilium


def _possible(p: _Plan, k: int) -> list[tuple[CiliumVersion, bool]]:
    """The Cilium versions member p may run while stage k runs, each marked True if it is its upgraded one."""
    if p.stage is None or p.stage > k:
        return [(p.before, False)]
    if p.stage == k or p.may_fail_over:
        return [(p.before, False), (p.after, True)]
    return [(p.after, True)]


def _skew_problems(plans: list[_Plan], planned: Sequence[PlannedStage]) -> list[str]:
    problems: list[str] = []
    reported: set[tuple[str, str]] = set()
    networks = sorted({p.member.network for p in plans if p.member.network is not None})
    for k, ps in enumerate(planned):
        for net in networks:
            peers = [p for p in plans if p.member.network == net]
            for i, a in enumerate(peers):
                for b in peers[i + 1 :]:
                    pair = (a.member.name, b.member.name)
                    if pair in reported:
                        continue
                    clash = _clash(_possible(a, k), _possible(b, k))
                    if clash is None:
                        continue
                    reported.add(pair)
                    ca, cb = clash
                    older = a.member.name if ca < cb else b.member.name
                    problems.append(
                        f"network {net}, stage {ps.spec.name}: member {a.member.name} could run Cilium {ca} "
                        f"while member {b.member.name} runs Cilium {cb}, {ca.minors_apart(cb)} minor versions apart "
                        f"(ClusterMesh peers may differ by at most {MAX_CILIUM_SKEW}); upgrade {older} first, "
                        "in an earlier stage or run."
                    )
    return problems


def _clash(
    xs: list[tuple[CiliumVersion, bool]], ys: list[tuple[CiliumVersion, bool]]
) -> tuple[CiliumVersion, CiliumVersion] | None:
    for cx, upgraded_x in xs:
        for cy, upgraded_y in ys:
            if (upgraded_x or upgraded_y) and cx.minors_apart(cy) > MAX_CILIUM_SKEW:
                return cx, cy
    return None
