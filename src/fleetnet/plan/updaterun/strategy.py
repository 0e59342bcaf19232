"""Update strategies and run goals: Azure's JSON in, frozen values out.

A strategy (reference §3.3) orders the fleet's members into stages of parallel groups; a run pairs
a goal (``managedClusterUpdate``, §3.2) with a snapshot of a strategy. Both arrive as user JSON
(``--stages FILE``, the REST body) with Azure's camelCase keys, so this module is where every rule
about their shape is checked, each refusal naming the field in one sentence. ``placement`` then
puts concrete members (``MemberInfo``) into that shape.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from fleetnet.errors import InvalidInput
from fleetnet.model.names import DNS_LABEL_RE
from fleetnet.plan.versions import KubeVersion

NAME_MAX = 50
GROUPS_PER_STAGE_MAX = 50
STAGE_CONCURRENCY_MAX = 50  # system limit (reference §3.4)
DEFAULT_STAGE_CONCURRENCY = 50
DEFAULT_GROUP_CONCURRENCY = 1
DISPLAY_NAME_MAX = 100
WAIT_MAX = 2**31 - 1  # int32 in the API
ONE_BY_ONE = "default"  # stage and group name of a run created without a strategy

_E = TypeVar("_E", bound=StrEnum)

_CONCURRENCY_RE = re.compile(r"^(?:([1-9]\d*)|([1-9]\d?|100)%)$")
_FAILURES_RE = re.compile(r"^(?:0|[1-9]\d*|(?:0|[1-9]\d?|100)%)$")

_STRATEGY_KEYS = frozenset({"stages"})
_STAGE_KEYS = frozenset(
    {
        "name",
        "groups",
        "afterStageWaitInSeconds",
        "maxConcurrency",
        "maxAllowedFailures",
        "beforeGates",
        "afterGates",
        "meshHealthCheck",
    }
)
_GROUP_KEYS = frozenset({"name", "maxConcurrency", "maxAllowedFailures", "beforeGates", "afterGates"})
_GATE_KEYS = frozenset({"type", "displayName"})
_UNSUPPORTED = {
    "memberSelector": "fleetnet selects members by their update group; set each member's group instead",
    "scheduledStartConfiguration": "fleetnet supports Approval gates only",
}


class GateType(StrEnum):
    APPROVAL = "Approval"


class UpgradeType(StrEnum):
    FULL = "Full"
    CONTROL_PLANE_ONLY = "ControlPlaneOnly"
    NODE_IMAGE_ONLY = "NodeImageOnly"


class NodeImageSelection(StrEnum):
    LATEST = "Latest"
    CONSISTENT = "Consistent"


@dataclass(frozen=True, slots=True)
class Amount:
    """A count or a percentage, as Azure writes ``maxConcurrency`` and ``maxAllowedFailures``."""

    value: int
    percent: bool = False

    @classmethod
    def parse(cls, text: str) -> Amount:
        if text.endswith("%"):
            return cls(int(text[:-1]), percent=True)
        return cls(int(text))

    def floor_of(self, n: int) -> int:
        """Concurrency: a percentage of ``n`` rounded down, at least 1 (reference §3.4)."""
        if not self.percent:
            return self.value
        return max(1, self.value * n // 100)

    def ceil_of(self, n: int) -> int:
        """Failure tolerance: a percentage of ``n`` rounded up (reference §3.5: 25% of 5 is 2)."""
        if not self.percent:
            return self.value
        return -(-self.value * n // 100)

    def __str__(self) -> str:
        return f"{self.value}%" if self.percent else str(self.value)


@dataclass(frozen=True, slots=True)
class GateSpec:
    type: GateType = GateType.APPROVAL
    display_name: str | None = None


@dataclass(frozen=True, slots=True)
class GroupSpec:
    name: str
    max_concurrency: Amount | None = None  # None: the default, 1
    max_allowed_failures: Amount | None = None  # None: fail fast, 0
    before_gates: tuple[GateSpec, ...] = ()
    after_gates: tuple[GateSpec, ...] = ()


@dataclass(frozen=True, slots=True)
class StageSpec:
    name: str
    groups: tuple[GroupSpec, ...]
    after_stage_wait_in_seconds: int = 0
    max_concurrency: Amount | None = None  # None: the default, 50
    max_allowed_failures: Amount | None = None
    before_gates: tuple[GateSpec, ...] = ()
    after_gates: tuple[GateSpec, ...] = ()
    mesh_health_check: bool = False  # fleetnet's own: check the stage's networks once its members are done


@dataclass(frozen=True, slots=True)
class Strategy:
    stages: tuple[StageSpec, ...]

    def to_json(self) -> dict[str, Any]:
        return strategy_to_json(self)

    @classmethod
    def from_json(cls, data: object) -> Strategy:
        return parse_strategy(data)


@dataclass(frozen=True, slots=True)
class UpgradeSpec:
    """Azure ``managedClusterUpdate``: what a run does to each member."""

    type: UpgradeType
    kubernetes_version: str | None = None
    node_image_selection: NodeImageSelection = NodeImageSelection.LATEST

    def __post_init__(self) -> None:
        if self.type in (UpgradeType.FULL, UpgradeType.CONTROL_PLANE_ONLY):
            if not self.kubernetes_version:
                raise InvalidInput(
                    f"upgrade type {self.type} needs kubernetesVersion; pass --kubernetes-version, such as 1.33.2."
                )
            # normalised ("v1.33.2" → "1.33.2") so that versions compare as text everywhere downstream
            object.__setattr__(self, "kubernetes_version", str(KubeVersion.parse(self.kubernetes_version)))
        elif self.kubernetes_version is not None:
            raise InvalidInput(
                "upgrade type NodeImageOnly does not take kubernetesVersion; leave --kubernetes-version out."
            )

    @classmethod
    def parse(
        cls, type: str, kubernetes_version: str | None = None, node_image_selection: str | None = None
    ) -> UpgradeSpec:
        """From the strings of the CLI flags or the REST body."""
        return cls(
            type=_enum(UpgradeType, type, "upgrade.type"),
            kubernetes_version=kubernetes_version or None,
            node_image_selection=_enum(NodeImageSelection, node_image_selection or "Latest", "nodeImageSelection.type"),
        )

    @property
    def target(self) -> KubeVersion | None:
        return None if self.kubernetes_version is None else KubeVersion.parse(self.kubernetes_version)

    def to_json(self) -> dict[str, Any]:
        upgrade: dict[str, Any] = {"type": str(self.type)}
        if self.kubernetes_version is not None:
            upgrade["kubernetesVersion"] = self.kubernetes_version
        return {"upgrade": upgrade, "nodeImageSelection": {"type": str(self.node_image_selection)}}

    @classmethod
    def from_json(cls, data: object) -> UpgradeSpec:
        obj = _object(data, "managedClusterUpdate", frozenset({"upgrade", "nodeImageSelection"}))
        upgrade = _object(obj.get("upgrade"), "managedClusterUpdate.upgrade", frozenset({"type", "kubernetesVersion"}))
        nis = obj.get("nodeImageSelection")
        selection = None
        if nis is not None:
            selection = _string(
                _object(nis, "managedClusterUpdate.nodeImageSelection", frozenset({"type"})).get("type"),
                "managedClusterUpdate.nodeImageSelection.type",
            )
        version = upgrade.get("kubernetesVersion")
        if version is not None:
            version = _string(version, "managedClusterUpdate.upgrade.kubernetesVersion")
        return cls.parse(_string(upgrade.get("type"), "managedClusterUpdate.upgrade.type"), version, selection)


@dataclass(frozen=True, slots=True)
class MemberInfo:
    """What the planner needs to know about a fleet member; versions are the ones it runs now."""

    name: str
    group: str | None
    kubernetes_version: str
    cilium_version: str | None = None
    network: str | None = None  # the cross-cluster network (profile) it is in, if any


# ---------------------------------------------------------------------------------------------------
# Parsing


def parse_strategy(data: object) -> Strategy:
    """A strategy from JSON text or a decoded object ``{"stages": [...]}``; InvalidInput on any fault."""
    if isinstance(data, str | bytes):
        try:
            data = json.loads(data)
        except ValueError as e:
            raise InvalidInput(f"the stages file is not valid JSON ({e}); fix the JSON and try again.") from e
    obj = _object(data, "strategy", _STRATEGY_KEYS)
    raw_stages = obj.get("stages")
    if not isinstance(raw_stages, list) or not raw_stages:
        raise InvalidInput("stages must be a non-empty list of stages; add at least one stage.")
    stages = tuple(_parse_stage(s, f"stages[{i}]") for i, s in enumerate(raw_stages))
    seen_stages: set[str] = set()
    seen_groups: dict[str, str] = {}
    for stage in stages:
        if stage.name in seen_stages:
            raise InvalidInput(f"stage name {stage.name!r} is used twice; give every stage a unique name.")
        seen_stages.add(stage.name)
        for group in stage.groups:
            if group.name in seen_groups:
                where = seen_groups[group.name]
                detail = "twice in that stage" if where == stage.name else f"in stages {where!r} and {stage.name!r}"
                raise InvalidInput(f"group {group.name!r} appears {detail}; a strategy may list each group only once.")
            seen_groups[group.name] = stage.name
    return Strategy(stages=stages)


def _parse_stage(data: object, path: str) -> StageSpec:
    obj = _object(data, path, _STAGE_KEYS)
    name = _name(obj.get("name"), f"{path}.name")
    raw_groups = obj.get("groups")
    if not isinstance(raw_groups, list) or not raw_groups:
        raise InvalidInput(f"{path}.groups must list at least one group; add the groups stage {name!r} updates.")
    if len(raw_groups) > GROUPS_PER_STAGE_MAX:
        raise InvalidInput(
            f"{path}.groups has {len(raw_groups)} groups, more than {GROUPS_PER_STAGE_MAX}; split the stage."
        )
    groups = tuple(_parse_group(g, f"{path}.groups[{i}]") for i, g in enumerate(raw_groups))
    wait = obj.get("afterStageWaitInSeconds", 0)
    if isinstance(wait, bool) or not isinstance(wait, int) or not 0 <= wait <= WAIT_MAX:
        raise InvalidInput(f"{path}.afterStageWaitInSeconds must be a whole number of seconds ≥ 0, such as 3600.")
    concurrency = _amount(obj.get("maxConcurrency"), f"{path}.maxConcurrency", _CONCURRENCY_RE)
    if concurrency is not None and not concurrency.percent and concurrency.value > STAGE_CONCURRENCY_MAX:
        raise InvalidInput(
            f"{path}.maxConcurrency {concurrency} is above the limit of {STAGE_CONCURRENCY_MAX}; "
            f"use at most {STAGE_CONCURRENCY_MAX} or a percentage."
        )
    ceiling = DEFAULT_STAGE_CONCURRENCY if concurrency is None else concurrency.value
    if concurrency is None or not concurrency.percent:
        for i, g in enumerate(groups):
            gc = g.max_concurrency
            if gc is not None and not gc.percent and gc.value > ceiling:
                raise InvalidInput(
                    f"{path}.groups[{i}].maxConcurrency {gc.value} is above its stage's maxConcurrency {ceiling}; "
                    "lower the group's value or raise the stage's."
                )
    mesh = obj.get("meshHealthCheck", False)
    if not isinstance(mesh, bool):
        raise InvalidInput(f"{path}.meshHealthCheck must be true or false.")
    return StageSpec(
        name=name,
        groups=groups,
        after_stage_wait_in_seconds=wait,
        max_concurrency=concurrency,
        max_allowed_failures=_amount(obj.get("maxAllowedFailures"), f"{path}.maxAllowedFailures", _FAILURES_RE),
        before_gates=_gates(obj.get("beforeGates"), f"{path}.beforeGates"),
        after_gates=_gates(obj.get("afterGates"), f"{path}.afterGates"),
        mesh_health_check=mesh,
    )


def _parse_group(data: object, path: str) -> GroupSpec:
    obj = _object(data, path, _GROUP_KEYS)
    return GroupSpec(
        name=_name(obj.get("name"), f"{path}.name"),
        max_concurrency=_amount(obj.get("maxConcurrency"), f"{path}.maxConcurrency", _CONCURRENCY_RE),
        max_allowed_failures=_amount(obj.get("maxAllowedFailures"), f"{path}.maxAllowedFailures", _FAILURES_RE),
        before_gates=_gates(obj.get("beforeGates"), f"{path}.beforeGates"),
        after_gates=_gates(obj.get("afterGates"), f"{path}.afterGates"),
    )


def _gates(data: object, path: str) -> tuple[GateSpec, ...]:
    if data is None:
        return ()
    if not isinstance(data, list):
        raise InvalidInput(f'{path} must be a list of gates such as [{{"type": "Approval"}}].')
    gates = []
    for i, raw in enumerate(data):
        obj = _object(raw, f"{path}[{i}]", _GATE_KEYS)
        kind = obj.get("type")
        if kind != GateType.APPROVAL:
            raise InvalidInput(f"{path}[{i}].type must be 'Approval', the only gate type fleetnet supports.")
        display = obj.get("displayName")
        if display is not None and (not isinstance(display, str) or not 1 <= len(display) <= DISPLAY_NAME_MAX):
            raise InvalidInput(f"{path}[{i}].displayName must be text of 1 to {DISPLAY_NAME_MAX} characters.")
        gates.append(GateSpec(type=GateType.APPROVAL, display_name=display))
    return tuple(gates)


def _amount(data: object, path: str, pattern: re.Pattern[str]) -> Amount | None:
    if data is None:
        return None
    text = str(data) if isinstance(data, int) and not isinstance(data, bool) else data
    if not isinstance(text, str) or not pattern.match(text):
        if pattern is _CONCURRENCY_RE:
            hint = 'a count ≥ 1 or a percentage from 1% to 100%, such as "2" or "25%"'
        else:
            hint = 'a count ≥ 0 or a percentage from 0% to 100%, such as "1" or "10%"'
        raise InvalidInput(f"{path} {data!r} is not valid; write {hint}.")
    return Amount.parse(text)


def _name(data: object, path: str) -> str:
    if not isinstance(data, str) or not 1 <= len(data) <= NAME_MAX or not DNS_LABEL_RE.match(data):
        raise InvalidInput(
            f"{path} {data!r} is not a valid name: use 1 to {NAME_MAX} lower-case letters, digits and '-', "
            "starting and ending with a letter or digit."
        )
    return data


def _object(data: object, path: str, allowed: frozenset[str]) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise InvalidInput(f"{path} must be a JSON object.")
    for key in data:
        if key in _UNSUPPORTED and key not in allowed:
            raise InvalidInput(f"{path}.{key} is not supported: {_UNSUPPORTED[key]}.")
        if key not in allowed:
            raise InvalidInput(f"{path} has unknown key {key!r}; use only {', '.join(sorted(allowed))}.")
    return data


def _string(data: object, path: str) -> str:
    if not isinstance(data, str):
        raise InvalidInput(f"{path} must be a string.")
    return data


def _enum(cls: type[_E], value: str, path: str) -> _E:
    try:
        return cls(value)
    except ValueError as e:
        raise InvalidInput(f"{path} {value!r} is not one of {', '.join(m.value for m in cls)}.") from e


# ---------------------------------------------------------------------------------------------------
# Serialising (the same camelCase shape parse_strategy reads)


def strategy_to_json(strategy: Strategy) -> dict[str, Any]:
    return {"stages": [_stage_to_json(s) for s in strategy.stages]}


def _stage_to_json(stage: StageSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"name": stage.name, "groups": [_group_to_json(g) for g in stage.groups]}
    if stage.after_stage_wait_in_seconds:
        out["afterStageWaitInSeconds"] = stage.after_stage_wait_in_seconds
    _put_common(out, stage.max_concurrency, stage.max_allowed_failures, stage.before_gates, stage.after_gates)
    if stage.mesh_health_check:
        out["meshHealthCheck"] = True
    return out


def _group_to_json(group: GroupSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"name": group.name}
    _put_common(out, group.max_concurrency, group.max_allowed_failures, group.before_gates, group.after_gates)
    return out


def _put_common(
    out: dict[str, Any],
    concurrency: Amount | None,
    failures: Amount | None,
    before: tuple[GateSpec, ...],
    after: tuple[GateSpec, ...],
) -> None:
    if concurrency is not None:
        out["maxConcurrency"] = str(concurrency)
    if failures is not None:
        out["maxAllowedFailures"] = str(failures)
    if before:
        out["beforeGates"] = [_gate_to_json(g) for g in before]
    if after:
        out["afterGates"] = [_gate_to_json(g) for g in after]


def _gate_to_json(gate: GateSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"type": str(gate.type)}
    if gate.display_name is not None:
        out["displayName"] = gate.display_name
    return out
