"""The etcd keyspace of a ClusterMesh, spelled exactly as Cilium spells it.

Every clustermesh-apiserver writes its own cluster's state under these keys and every remote agent
(or KVStoreMesh) reads them, so one misplaced '/' would make clusters invisible to each other.
Builders here are the only place fleetnet makes a key; parsers turn a key read from etcd back into
its parts (they accept both the ``cilium/state`` keys of a clustermesh-apiserver and the
``cilium/cache`` copies KVStoreMesh keeps per remote). Source: cilium ``pkg/kvstore``,
``pkg/clustermesh/store``, ``pkg/node/store``, ``pkg/ipcache``, ``pkg/identity/cache``
(reference cilium-clustermesh.md §3.1–3.2).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import NoReturn

from fleetnet.errors import InvalidInput

BASE_KEY_PREFIX = "cilium"
STATE_PREFIX = "cilium/state"
CACHE_PREFIX = "cilium/cache"
CLUSTER_CONFIG_PREFIX = "cilium/cluster-config"
SYNCED_PREFIX = "cilium/synced"
HEARTBEAT_PATH = "cilium/.heartbeat"
INIT_LOCK_PATH = "cilium/.initlock"
HAS_CLUSTER_CONFIG_PATH = "cilium/.has-cluster-config"

NODES_PREFIX = "cilium/state/nodes/v1"
SERVICES_PREFIX = "cilium/state/services/v1"
SERVICE_EXPORTS_PREFIX = "cilium/state/serviceexports/v1"
IP_IDENTITIES_PREFIX = "cilium/state/ip/v1"
IDENTITIES_PREFIX = "cilium/state/identities/v1"
# ipcache entries are not cluster-scoped: every cluster writes into this one address space
ADDRESS_SPACE = "default"
IP_PREFIX = "cilium/state/ip/v1/default"
IDENTITY_ID_PREFIX = "cilium/state/identities/v1/id"

# The prefixes a remote's sync canaries stand for (cilium/synced/<cluster>/<prefix>), in the order
# the agent registers its watches.
SYNCED_STATE_PREFIXES = (NODES_PREFIX, SERVICES_PREFIX, IP_IDENTITIES_PREFIX, IDENTITIES_PREFIX)


def join_key(*elems: str) -> str:
    """Cilium's ``JoinKey``: join with '/', drop empty parts, collapse '//' and strip a trailing '/'."""
    joined = "/".join(e for e in elems if e)
    return re.sub(r"/{2,}", "/", joined).rstrip("/")


def state_to_cache_prefix(prefix: str) -> str:
    """Cilium's ``StateToCachePrefix``: ``cilium/state...`` → ``cilium/cache...``; other prefixes unchanged."""
    if prefix.startswith(STATE_PREFIX):
        return CACHE_PREFIX + prefix[len(STATE_PREFIX) :]
    return prefix


def _part(what: str, value: str) -> str:
    # an empty or slashed part would silently produce another object's key
    if not value or "/" in value:
        raise InvalidInput(f"{what} {value!r} cannot be part of a kvstore key: it must be non-empty without '/'.")
    return value


def cluster_config_key(cluster: str) -> str:
    return join_key(CLUSTER_CONFIG_PREFIX, _part("cluster name", cluster))


def node_key(cluster: str, node: str, *, cached: bool = False) -> str:
    prefix = state_to_cache_prefix(NODES_PREFIX) if cached else NODES_PREFIX
    return join_key(prefix, _part("cluster name", cluster), _part("node name", node))


def service_key(cluster: str, namespace: str, name: str, *, cached: bool = False) -> str:
    prefix = state_to_cache_prefix(SERVICES_PREFIX) if cached else SERVICES_PREFIX
    return join_key(prefix, _part("cluster name", cluster), _part("namespace", namespace), _part("name", name))


def service_export_key(cluster: str, namespace: str, name: str, *, cached: bool = False) -> str:
    prefix = state_to_cache_prefix(SERVICE_EXPORTS_PREFIX) if cached else SERVICE_EXPORTS_PREFIX
    return join_key(prefix, _part("cluster name", cluster), _part("namespace", namespace), _part("name", name))


def ip_key(ip: str, *, cached_cluster: str | None = None) -> str:
    """``cilium/state/ip/v1/default/<ip>`` (``<ip>/<len>`` for a CIDR entry); the KVStoreMesh copy
    lives under ``cilium/cache/ip/v1/<cluster>/<ip>``."""
    if not ip or ip.startswith("/"):
        raise InvalidInput(f"address {ip!r} cannot be part of a kvstore key.")
    if cached_cluster is not None:
        return join_key(state_to_cache_prefix(IP_IDENTITIES_PREFIX), _part("cluster name", cached_cluster), ip)
    return join_key(IP_PREFIX, ip)


def identity_key(identity: int, *, cached_cluster: str | None = None) -> str:
    if identity < 0:
        raise InvalidInput(f"identity {identity} cannot be part of a kvstore key.")
    if cached_cluster is not None:
        return join_key(
            state_to_cache_prefix(IDENTITIES_PREFIX), _part("cluster name", cached_cluster), "id", str(identity)
        )
    return join_key(IDENTITY_ID_PREFIX, str(identity))


def synced_key(cluster: str, prefix: str) -> str:
    """The sync canary of ``prefix`` (e.g. ``cilium/state/nodes/v1``) written by ``cluster``."""
    return join_key(SYNCED_PREFIX, _part("cluster name", cluster), prefix)


def synced_keys(cluster: str, *, cached: bool = False) -> tuple[str, ...]:
    """The canaries an agent waits for before listing each prefix of ``cluster``."""
    prefixes: tuple[str, ...] = SYNCED_STATE_PREFIXES
    if cached:
        prefixes = tuple(state_to_cache_prefix(p) for p in prefixes)
    return tuple(synced_key(cluster, p) for p in prefixes)


def watch_prefix(prefix: str, cluster: str | None = None) -> str:
    """A prefix to list and watch, ending in '/' so that cluster ``c1`` never matches ``c10``'s keys."""
    return (join_key(prefix, _part("cluster name", cluster)) if cluster is not None else join_key(prefix)) + "/"


def nodes_watch_prefix(cluster: str, *, cached: bool = False) -> str:
    return watch_prefix(state_to_cache_prefix(NODES_PREFIX) if cached else NODES_PREFIX, cluster)


def services_watch_prefix(cluster: str, *, cached: bool = False) -> str:
    return watch_prefix(state_to_cache_prefix(SERVICES_PREFIX) if cached else SERVICES_PREFIX, cluster)


def ip_watch_prefix(*, cached_cluster: str | None = None) -> str:
    if cached_cluster is not None:
        return watch_prefix(state_to_cache_prefix(IP_IDENTITIES_PREFIX), cached_cluster)
    return watch_prefix(IP_PREFIX)


def identities_watch_prefix(*, cached_cluster: str | None = None) -> str:
    if cached_cluster is not None:
        return watch_prefix(state_to_cache_prefix(IDENTITIES_PREFIX), cached_cluster) + "id/"
    return watch_prefix(IDENTITY_ID_PREFIX)


class KeyKind(StrEnum):
    CLUSTER_CONFIG = "cluster-config"
    NODE = "node"
    SERVICE = "service"
    SERVICE_EXPORT = "serviceexport"
    IP = "ip"
    IDENTITY = "identity"
    SYNCED = "synced"
    HEARTBEAT = "heartbeat"


@dataclass(frozen=True, slots=True)
class ParsedKey:
    """The parts of a key. ``cluster`` is the owning cluster where the key names one (for ``ip`` and
    ``identity`` only in their KVStoreMesh copies); ``prefix`` is the prefix a ``synced`` canary
    stands for."""

    kind: KeyKind
    cluster: str | None = None
    namespace: str | None = None
    name: str | None = None
    ip: str | None = None
    identity: int | None = None
    prefix: str | None = None
    cached: bool = False


def parse_key(key: str) -> ParsedKey:
    """The parts of a ClusterMesh key, or ``InvalidInput`` if it is not one."""
    if key == HEARTBEAT_PATH:
        return ParsedKey(KeyKind.HEARTBEAT)
    parts = key.split("/")
    if any(p == "" for p in parts):
        _bad(key)
    if key.startswith(CLUSTER_CONFIG_PREFIX + "/") and len(parts) == 3:
        return ParsedKey(KeyKind.CLUSTER_CONFIG, cluster=parts[2])
    if key.startswith(SYNCED_PREFIX + "/") and len(parts) >= 4:
        return ParsedKey(KeyKind.SYNCED, cluster=parts[2], prefix="/".join(parts[3:]))
    if len(parts) < 4 or parts[0] != BASE_KEY_PREFIX or parts[1] not in ("state", "cache"):
        _bad(key)
    cached = parts[1] == "cache"
    kind, version, rest = parts[2], parts[3], parts[4:]
    if version != "v1":
        _bad(key)
    if kind == "nodes" and len(rest) == 2:
        return ParsedKey(KeyKind.NODE, cluster=rest[0], name=rest[1], cached=cached)
    if kind in ("services", "serviceexports") and len(rest) == 3:
        k = KeyKind.SERVICE if kind == "services" else KeyKind.SERVICE_EXPORT
        return ParsedKey(k, cluster=rest[0], namespace=rest[1], name=rest[2], cached=cached)
    if kind == "ip" and len(rest) in (2, 3):
        if not cached and rest[0] != ADDRESS_SPACE:
            _bad(key)
        return ParsedKey(KeyKind.IP, cluster=rest[0] if cached else None, ip="/".join(rest[1:]), cached=cached)
    if kind == "identities":
        if not cached and len(rest) == 2 and rest[0] == "id":
            return ParsedKey(KeyKind.IDENTITY, identity=_identity(key, rest[1]))
        if cached and len(rest) == 3 and rest[1] == "id":
            return ParsedKey(KeyKind.IDENTITY, cluster=rest[0], identity=_identity(key, rest[2]), cached=True)
    _bad(key)


def _identity(key: str, text: str) -> int:
    if not text.isdigit() or (len(text) > 1 and text.startswith("0")) or int(text) >= 2**32:
        _bad(key)
    return int(text)


def _bad(key: str) -> NoReturn:
    raise InvalidInput(f"{key!r} is not a ClusterMesh kvstore key.")
