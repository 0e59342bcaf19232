"""etcd, the kvstore of every clustermesh-apiserver: client adapter, users and roles, server command line.

Nothing from grpc or the etcd protobufs leaks out of this package; its failures are these:

    SystemFailure
    ├── KvstoreUnavailable          cannot talk to etcd: refused, deadline, TLS, stream broken
    │   └── KvstoreRevisionCompacted   a watch asked for history etcd no longer has (re-list)
    ├── KvstorePermissionDenied     etcd's users/roles refused the request
    └── KvstoreLeaseExpired         a lease being kept alive no longer exists

A caller that re-lists on ``KvstoreUnavailable`` (Cilium's list-watch-resync) therefore handles a
compacted watch too.
"""

from __future__ import annotations

from fleetnet.errors import SystemFailure


class KvstoreUnavailable(SystemFailure):
    """etcd cannot be reached or the stream to it broke; the message names the endpoint."""


class KvstoreRevisionCompacted(KvstoreUnavailable):
    """A watch started from a revision that etcd has compacted away; list again and watch from there."""


class KvstorePermissionDenied(SystemFailure):
    """etcd's auth refused a request; the message names the key and the user (client certificate CN)."""


class KvstoreLeaseExpired(SystemFailure):
    """The lease is gone (expired or revoked); grant a new one and write the keys again."""


__all__ = ["KvstoreLeaseExpired", "KvstorePermissionDenied", "KvstoreRevisionCompacted", "KvstoreUnavailable"]
