"""Value types of the policy subset: parsed policies, selectors, endpoints and compiled policy entries.

Parsing (``parse``) turns YAML documents into these; compiling (``compile``) turns them, with the
endpoints and identities a cluster knows, into ``EndpointPolicy`` values whose ``PolicyEntry`` items
are exactly the keys and values of the datapath's policy map. Each entry keeps the rules it came
from so that ``trace`` can say which rule decided a verdict.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Literal

from fleetnet.plan.labels import SOURCE_ANY, LabelSet

Direction = Literal["ingress", "egress"]
Section = Literal["ingress", "ingressDeny", "egress", "egressDeny"]
Operator = Literal["In", "NotIn", "Exists", "DoesNotExist"]

KIND_CNP = "CiliumNetworkPolicy"
KIND_CCNP = "CiliumClusterwideNetworkPolicy"

PROTO_ANY = 0
PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_UDP = 17
PROTOCOL_NUMBERS: Mapping[str, int] = {"ANY": PROTO_ANY, "TCP": PROTO_TCP, "UDP": PROTO_UDP}
PROTOCOL_NAMES: Mapping[int, str] = {PROTO_ANY: "ANY", PROTO_ICMP: "ICMP", PROTO_TCP: "TCP", PROTO_UDP: "UDP"}

# Identity 0 in a policy entry means "any identity", as in Cilium's policy map.
ANY_IDENTITY = 0

EntryKey = tuple[Direction, int, int, int]  # (direction, identity, dport, proto)


def section_direction(section: Section) -> Direction:
    return "ingress" if section.startswith("ingress") else "egress"


class Entity(Enum):
    """Cilium policy entities fleetnet supports (``fromEntities`` / ``toEntities``)."""

    ALL = "all"
    WORLD = "world"
    CLUSTER = "cluster"
    CLUSTER_MESH = "cluster-mesh"
    HOST = "host"
    REMOTE_NODE = "remote-node"
    HEALTH = "health"
    INIT = "init"
    UNMANAGED = "unmanaged"
    INGRESS = "ingress"
    KUBE_APISERVER = "kube-apiserver"
    NONE = "none"


@dataclass(frozen=True, slots=True, order=True)
class SelectorKey:
    """A label key as a selector names it: ``any`` matches the key whatever the label's source."""

    source: str
    key: str

    def __str__(self) -> str:
        return f"{self.source}:{self.key}"

    def names(self, key: str) -> bool:
        """Whether this selector key is about the (k8s) label ``key``."""
        return self.key == key and self.source in ("k8s", SOURCE_ANY)


@dataclass(frozen=True, slots=True, order=True)
class Requirement:
    """One term of a selector; ``matchLabels: {k: v}`` becomes ``k In (v)``. Values are sorted."""

    key: SelectorKey
    operator: Operator
    values: tuple[str, ...] = ()

    def __str__(self) -> str:
        if self.operator == "In" and len(self.values) == 1:
            return f"{self.key}={self.values[0]}"
        if self.operator == "Exists":
            return str(self.key)
        if self.operator == "DoesNotExist":
            return f"!{self.key}"
        return f"{self.key} {self.operator.lower()} ({','.join(self.values)})"


@dataclass(frozen=True, slots=True)
class Selector:
    """A conjunction of requirements (an endpoint selector); no requirement selects every label set."""

    requirements: tuple[Requirement, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "requirements", tuple(sorted(set(self.requirements))))

    def __str__(self) -> str:
        return "{" + ", ".join(str(r) for r in self.requirements) + "}"

    def names(self, key: str) -> bool:
        return any(r.key.names(key) for r in self.requirements)

    def names_source(self, source: str) -> bool:
        return any(r.key.source == source for r in self.requirements)

    def extended(self, *more: Requirement) -> Selector:
        return Selector(self.requirements + more)


@dataclass(frozen=True, slots=True, order=True)
class PortProtocol:
    """One ``toPorts[].ports[]`` item; ``port`` None means every port of the protocol."""

    port: int | None
    protocol: int  # PROTO_ANY, PROTO_TCP or PROTO_UDP

    def __str__(self) -> str:
        return f"{self.port if self.port is not None else '*'}/{PROTOCOL_NAMES[self.protocol]}"


@dataclass(frozen=True, slots=True)
class PolicyRef:
    """Which document a rule came from."""

    kind: str
    namespace: str | None
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"


@dataclass(frozen=True, slots=True)
class RuleRef:
    """One item of one section of one rule: ``CiliumNetworkPolicy demo/x ingress rule 0``."""

    policy: PolicyRef
    spec_index: int | None  # None for ``spec``, i for ``specs[i]``
    section: Section
    index: int

    def __str__(self) -> str:
        where = "" if self.spec_index is None else f" specs[{self.spec_index}]"
        return f"{self.policy}{where} {self.section} rule {self.index}"


@dataclass(frozen=True, slots=True)
class PeerRule:
    """One item of ``ingress``/``egress``/``ingressDeny``/``egressDeny``.

    ``endpoints`` and ``entities`` are None when absent: with neither, an item that has ports allows
    those ports from (or to) every peer and an empty item (``{}``) matches nothing. An empty list
    given explicitly matches nothing. ``ports`` None means all ports.
    """

    ref: RuleRef
    endpoints: tuple[Selector, ...] | None = None
    entities: tuple[Entity, ...] | None = None
    ports: tuple[PortProtocol, ...] | None = None

    @property
    def direction(self) -> Direction:
        return section_direction(self.ref.section)

    @property
    def deny(self) -> bool:
        return self.ref.section.endswith("Deny")


@dataclass(frozen=True, slots=True)
class Rule:
    """One ``spec`` (or ``specs[i]``). Selectors already carry the namespace a CNP implies; the cluster
    scoping of ``policy-default-local-cluster`` is applied at compile time (it is a network switch)."""

    policy: PolicyRef
    spec_index: int | None
    endpoint_selector: Selector
    ingress: tuple[PeerRule, ...] = ()
    ingress_deny: tuple[PeerRule, ...] = ()
    egress: tuple[PeerRule, ...] = ()
    egress_deny: tuple[PeerRule, ...] = ()
    description: str = ""

    def enforces(self, direction: Direction) -> bool:
        if direction == "ingress":
            return bool(self.ingress or self.ingress_deny)
        return bool(self.egress or self.egress_deny)

    def items(self, direction: Direction) -> tuple[PeerRule, ...]:
        if direction == "ingress":
            return self.ingress + self.ingress_deny
        return self.egress + self.egress_deny


@dataclass(frozen=True, slots=True)
class Policy:
    """A parsed CiliumNetworkPolicy (namespaced) or CiliumClusterwideNetworkPolicy."""

    ref: PolicyRef
    rules: tuple[Rule, ...]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A local endpoint (pod) as the policy compiler sees it."""

    id: int
    namespace: str
    name: str
    labels: LabelSet
    identity: int


@dataclass(frozen=True, slots=True, order=True)
class PolicyEntry:
    """One policy-map entry of an endpoint: key (direction, identity, dport, proto) and verdict (deny).

    ``identity``, ``dport`` and ``proto`` use 0 for "any". ``proto`` 0 only ever comes with ``dport``
    0: a port given with protocol ANY is compiled into one TCP and one UDP entry.
    """

    direction: Direction
    identity: int
    dport: int
    proto: int
    deny: bool

    @property
    def key(self) -> EntryKey:
        return (self.direction, self.identity, self.dport, self.proto)

    def __str__(self) -> str:
        ident = "any identity" if self.identity == ANY_IDENTITY else f"identity {self.identity}"
        port = "any port" if self.dport == 0 else f"port {self.dport}"
        proto = PROTOCOL_NAMES.get(self.proto, str(self.proto))
        return f"{'deny' if self.deny else 'allow'} {self.direction} {ident} {port}/{proto}"


@dataclass(frozen=True, slots=True)
class Lookup:
    """What a policy-map lookup decided for one direction."""

    allowed: bool
    enforced: bool
    entry: PolicyEntry | None  # None: not enforced, or the default deny


@dataclass(frozen=True, slots=True)
class EndpointPolicy:
    """The compiled policy of one endpoint.

    A direction that is not enforced allows everything and has no entries. In an enforced direction
    a packet is denied if any entry matching it denies, allowed if one allows, else denied (the
    default deny). ``rules`` (not part of equality) says which rules produced each entry, and
    ``*_enforced_by`` which policies put a direction into default deny.
    """

    ingress_enforced: bool = False
    egress_enforced: bool = False
    entries: frozenset[PolicyEntry] = frozenset()
    ingress_enforced_by: tuple[PolicyRef, ...] = ()
    egress_enforced_by: tuple[PolicyRef, ...] = ()
    rules: Mapping[PolicyEntry, tuple[RuleRef, ...]] = field(default_factory=dict, compare=False)

    def enforced(self, direction: Direction) -> bool:
        return self.ingress_enforced if direction == "ingress" else self.egress_enforced

    def enforced_by(self, direction: Direction) -> tuple[PolicyRef, ...]:
        return self.ingress_enforced_by if direction == "ingress" else self.egress_enforced_by

    def lookup(self, direction: Direction, identity: int, dport: int, proto: int) -> Lookup:
        """The datapath's decision for a packet from (ingress) or to (egress) ``identity``."""
        if not self.enforced(direction):
            return Lookup(True, False, None)
        by_key = {e.key: e for e in self.entries}
        hits = [by_key[k] for k in lookup_keys(direction, identity, dport, proto) if k in by_key]
        for entry in hits:
            if entry.deny:
                return Lookup(False, True, entry)
        return Lookup(True, True, hits[0]) if hits else Lookup(False, True, None)


def lookup_keys(direction: Direction, identity: int, dport: int, proto: int) -> tuple[EntryKey, ...]:
    """The policy-map keys a packet can hit, most specific first: the identity, then any identity; for
    each, (port, protocol), then (any port, protocol), then (any port, any protocol). A deny at any of
    them beats an allow at any other; among allows the first hit is the one reported."""
    keys: list[EntryKey] = []
    for ident in dict.fromkeys((identity, ANY_IDENTITY)):
        for port, pr in dict.fromkeys(((dport, proto), (0, proto), (0, PROTO_ANY))):
            keys.append((direction, ident, port, pr))
    return tuple(keys)
