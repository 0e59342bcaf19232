"""Cilium's etcd users and roles on a member's etcd (reference §3.6, ``pkg/kvstore/etcdinit``).

etcd runs with ``--client-cert-auth``, so a user is whoever holds a certificate with that CN. The
member's own exporter writes as ``admin-<cluster>`` (root role); every peer reads as
``remote-<peer>`` (authMode ``cluster``) with the read-only ``remote`` role, which covers only what
Cilium lets remote clusters see: the heartbeat, ``cilium/state/``, this cluster's cluster-config and
its sync canaries. A peer therefore cannot write into another cluster's etcd, nor read its caches.

Cilium also creates ``remote`` (legacy authMode), ``local-<cluster>`` and ``externalworkload``;
fleetnet uses neither legacy auth, KVStoreMesh nor external workloads, so it leaves them out.
"""

from __future__ import annotations

from fleetnet.errors import Conflict, NotFound
from fleetnet.kvstore.client import EtcdClient
from fleetnet.pki.clustermesh import ROOT_USER, admin_user, remote_user

ROOT_ROLE = "root"  # built into etcd
REMOTE_ROLE = "remote"

HEARTBEAT_KEY = "cilium/.heartbeat"
STATE_PREFIX = "cilium/state/"
CLUSTER_CONFIG_PREFIX = "cilium/cluster-config/"
SYNCED_PREFIX = "cilium/synced/"


def remote_ranges(cluster_name: str) -> list[tuple[str, bool]]:
    """(key, is_prefix) pairs the ``remote`` role may read, as ``rangesForRemoteRole`` has them.

    The heartbeat is granted as a prefix without a trailing slash, exactly as Cilium does; it covers
    the key itself.
    """
    return [
        (HEARTBEAT_KEY, True),
        (STATE_PREFIX, True),
        (f"{CLUSTER_CONFIG_PREFIX}{cluster_name}", False),
        (f"{SYNCED_PREFIX}{cluster_name}/", True),
    ]


async def init_cluster_users(client: EtcdClient, cluster_name: str) -> None:
    """Create root, admin-<cluster> and the remote role on a fresh etcd, then enable auth.

    Run it once, as ``root``, before anything else touches the etcd; like Cilium's, it is not
    idempotent (a second run meets ``Conflict``) and once auth is on only root-role users can change users.
    """
    for user in (ROOT_USER, admin_user(cluster_name)):
        await client.add_user(user)
        await client.grant_role(user, ROOT_ROLE)
    await client.add_role(REMOTE_ROLE)
    for key, prefix in remote_ranges(cluster_name):
        await client.grant_permission(REMOTE_ROLE, key, prefix=prefix, permission="read")
    # Last: enabling auth is what locks out everyone without a role.
    await client.enable_auth()


async def ensure_remote_user(client: EtcdClient, peer_name: str) -> None:
    """Let cluster ``peer_name`` read this etcd as ``remote-<peer>``; doing it again changes nothing."""
    user = remote_user(peer_name)
    try:
        await client.add_user(user)
    except Conflict:
        pass
    await client.grant_role(user, REMOTE_ROLE)


async def remove_remote_user(client: EtcdClient, peer_name: str) -> None:
    """Stop cluster ``peer_name`` from reading this etcd; its next request is refused. Missing is fine."""
    try:
        await client.delete_user(remote_user(peer_name))
    except NotFound:
        pass
