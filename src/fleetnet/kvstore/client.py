"""The one place fleetnet talks to etcd: an asyncio etcd v3 client over gRPC with mutual TLS.

It uses the protobuf stubs that ship in ``aetcd`` but not aetcd's client, because that client only
dials insecure channels. gRPC rather than etcd's HTTP gateway because the gateway ignores the client
certificate, and etcd's users and roles (Cilium's read-only ``remote`` role) key on the certificate's
CN, which etcd reads only on gRPC connections.

The server certificate is verified by the address in the endpoint: grpc checks an IP target against
the certificate's IP SANs, and member certificates carry their node IPs (``pki.clustermesh``), so no
``ssl_target_name_override`` is needed.

Every grpc error is translated here into the errors of ``fleetnet.kvstore``; nothing from grpc or the
protobufs leaves this module.
"""

from __future__ import annotations

import asyncio
import os
import urllib.parse
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Self

import grpc
from aetcd import rpc

from fleetnet.errors import Conflict, FleetnetError, InvalidInput, NotFound, SystemFailure
from fleetnet.kvstore import (
    KvstoreLeaseExpired,
    KvstorePermissionDenied,
    KvstoreRevisionCompacted,
    KvstoreUnavailable,
)
from fleetnet.kvstore.config import EtcdClientConfig
from fleetnet.pki.certs import CertKeyPair

StrPath = str | os.PathLike[str]

_MiB = 1024 * 1024
_CHANNEL_OPTIONS = (
    # Keepalive pings are what end a watch on a peer that vanished without closing its socket (a
    # partitioned underlay). etcd answers pings more often than --grpc-keepalive-min-time (5s) with a
    # GOAWAY, and does not allow them on an idle connection, hence 10s and "only during calls".
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    # A keepalive rides on any ping already in flight (e.g. grpc's bandwidth probe), whose own timeout is
    # a minute by default: without this a frozen etcd ends a watch only after ~70s instead of ~15s.
    ("grpc.http2.ping_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 0),
    # By default grpc stops pinging after two pings without data: a quiet watch would go unchecked.
    ("grpc.http2.max_pings_without_data", 0),
    # grpc backs off up to two minutes between reconnects by default; a restarted etcd should be used
    # again within seconds.
    ("grpc.initial_reconnect_backoff_ms", 250),
    ("grpc.min_reconnect_backoff_ms", 250),
    ("grpc.max_reconnect_backoff_ms", 5_000),
    ("grpc.max_receive_message_length", 64 * _MiB),
)
_PAGE = 1000

_PERMISSIONS = {"read": 0, "write": 1, "readwrite": 2}  # authpb.Permission.Type


@dataclass(frozen=True, slots=True)
class KeyValue:
    key: str
    value: bytes
    mod_revision: int
    create_revision: int
    lease: int


@dataclass(frozen=True, slots=True)
class WatchEvent:
    kind: Literal["put", "delete"]
    key: str
    value: bytes
    mod_revision: int


@dataclass(frozen=True, slots=True)
class EtcdStatus:
    version: str
    cluster_id: int
    member_id: int
    leader: int
    db_size: int
    raft_term: int


def _encode(key: str) -> bytes:
    return key.encode("utf-8", "surrogateescape")


def _decode(key: bytes) -> str:
    return key.decode("utf-8", "surrogateescape")


def _range_end(prefix: bytes) -> bytes:
    """etcd's end of the range holding every key that starts with ``prefix``."""
    end = bytearray(prefix)
    for i in reversed(range(len(end))):
        if end[i] < 0xFF:
            end[i] += 1
            return bytes(end[: i + 1])
    return b"\0"  # no upper bound: the prefix was empty or all 0xff


def _prefix_range(prefix: str) -> tuple[bytes, bytes]:
    start = _encode(prefix)
    return (start or b"\0"), _range_end(start)


def _key_value(kv: Any) -> KeyValue:
    return KeyValue(
        key=_decode(kv.key),
        value=bytes(kv.value),
        mod_revision=kv.mod_revision,
        create_revision=kv.create_revision,
        lease=kv.lease,
    )


def _target(endpoint: str) -> str:
    """The grpc target for an ``https://host:port`` endpoint."""
    try:
        url = urllib.parse.urlsplit(endpoint)
        port = url.port
    except ValueError as e:
        raise InvalidInput(f"etcd endpoint {endpoint!r} is not a URL; write it as https://HOST:PORT.") from e
    if url.scheme != "https" or not url.hostname or port is None:
        raise InvalidInput(
            f"etcd endpoint {endpoint!r} must be https://HOST:PORT: fleetnet talks to etcd only with mutual TLS."
        )
    host = f"[{url.hostname}]" if ":" in url.hostname else url.hostname
    return f"{host}:{port}"


def _read(path: StrPath, what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise InvalidInput(
            f"cannot read the {what} {os.fspath(path)!r} ({e.strerror}); check the etcd client config."
        ) from e


# How grpc's details tell a TLS refusal from a plain connection failure. Not just "handshake": while
# etcd starts, its listener takes connections and drops them ("Handshake read failed (Endpoint
# closing)"), which is "not up yet", not a certificate problem.
_TLS_HINTS = ("ssl_error", "certificate", "hostname verification", "tsi_", "handshake failed")


class EtcdClient:
    """A connection to one etcd member. Make it with ``connect`` or ``from_config``; ``close`` it when done.

    Keys are ``str``, values ``bytes``. Every unary call has ``timeout`` as its deadline; watches and
    keepalive streams have none and rely on grpc keepalive to notice a dead peer.
    """

    def __init__(self, channel: Any, endpoint: str, user: str, timeout: float) -> None:
        self._channel = channel
        self._endpoint = endpoint
        self._user = user
        self._timeout = timeout
        self._kv = rpc.KVStub(channel)
        self._watch = rpc.WatchStub(channel)
        self._lease = rpc.LeaseStub(channel)
        self._auth = rpc.AuthStub(channel)
        self._maintenance = rpc.MaintenanceStub(channel)

    # -- life cycle ---------------------------------------------------------------------------------

    @classmethod
    async def connect(
        cls,
        endpoints: Sequence[str] | str,
        *,
        ca_file: StrPath,
        cert_file: StrPath,
        key_file: StrPath,
        timeout: float = 5.0,
    ) -> EtcdClient:
        """Connect to the first endpoint that answers a status request; raise the last error if none does."""
        if isinstance(endpoints, str):
            endpoints = (endpoints,)
        if not endpoints:
            raise InvalidInput("no etcd endpoint given; the etcd client config needs at least one.")
        ca = _read(ca_file, "trusted CA file")
        cert = _read(cert_file, "client certificate file")
        key = _read(key_file, "client key file")
        try:
            user = CertKeyPair(cert, key).common_name
        except ValueError as e:
            raise InvalidInput(f"{os.fspath(cert_file)!r} is not a PEM certificate; reissue it.") from e
        credentials = grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)
        targets = [(endpoint, _target(endpoint)) for endpoint in endpoints]  # all checked before dialling
        last: FleetnetError | None = None
        for endpoint, target in targets:
            channel = grpc.aio.secure_channel(target, credentials, options=_CHANNEL_OPTIONS)
            client = cls(channel, endpoint, user, timeout)
            try:
                await client.status()
            except FleetnetError as e:
                await channel.close()
                last = e
                continue
            except BaseException:
                await channel.close()
                raise
            return client
        assert last is not None
        raise last

    @classmethod
    async def from_config(cls, cfg: EtcdClientConfig, timeout: float = 5.0) -> EtcdClient:
        return await cls.connect(
            cfg.endpoints,
            ca_file=cfg.trusted_ca_file,
            cert_file=cfg.cert_file,
            key_file=cfg.key_file,
            timeout=timeout,
        )

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def endpoint(self) -> str:
        return self._endpoint

    @property
    def user(self) -> str:
        """The etcd user this client acts as: the CN of its client certificate."""
        return self._user

    # -- error translation --------------------------------------------------------------------------

    def _error(self, e: grpc.aio.AioRpcError, op: str, subject: str) -> FleetnetError:
        code, details = e.code(), e.details() or ""
        lowered = details.lower()
        where = f"etcd at {self._endpoint}"
        if code in (
            grpc.StatusCode.UNAVAILABLE,
            grpc.StatusCode.DEADLINE_EXCEEDED,
            grpc.StatusCode.CANCELLED,
        ):
            if any(hint in lowered for hint in _TLS_HINTS):
                return KvstoreUnavailable(
                    f"the TLS handshake with {where} failed ({details}); check that the trusted CA "
                    f"signed the server's certificate, that the certificate names this address, and that "
                    f"the server trusts the CA of the client certificate of {self._user!r}."
                )
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                return KvstoreUnavailable(
                    f"{where} did not answer to {op} {subject} within {self._timeout:g}s; check that it is running."
                )
            return KvstoreUnavailable(f"{where} is unreachable ({details}); check that it is running and listening.")
        if code in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED) or (
            code == grpc.StatusCode.INVALID_ARGUMENT and ("auth" in lowered or "user name is empty" in lowered)
        ):
            return KvstorePermissionDenied(
                f"{where} refused to {op} {subject} for user {self._user!r} ({details}); "
                f"that user's role does not allow it."
            )
        if code == grpc.StatusCode.OUT_OF_RANGE and "compacted" in lowered:
            return KvstoreRevisionCompacted(f"{where} has compacted the revision needed to {op} {subject}; list again.")
        if code == grpc.StatusCode.FAILED_PRECONDITION and "already exists" in lowered:
            return Conflict(f"{where} refused to {op} {subject}: it already exists.")
        if code == grpc.StatusCode.NOT_FOUND or (
            code == grpc.StatusCode.FAILED_PRECONDITION and "not found" in lowered
        ):
            return NotFound(f"{where} cannot {op} {subject}: it does not exist.")
        return SystemFailure(f"{where} failed to {op} {subject} ({code.name}: {details}).")

    async def _unary(self, method: Any, request: Any, op: str, subject: str) -> Any:
        try:
            return await method(request, timeout=self._timeout)
        except grpc.aio.AioRpcError as e:
            raise self._error(e, op, subject) from e

    # -- keys ---------------------------------------------------------------------------------------

    async def get(self, key: str) -> KeyValue | None:
        resp = await self._unary(self._kv.Range, rpc.RangeRequest(key=_encode(key)), "read", f"key {key!r}")
        return _key_value(resp.kvs[0]) if resp.kvs else None

    async def list_prefix(self, prefix: str) -> tuple[list[KeyValue], int]:
        """Every key under ``prefix`` (in key order) as of one revision, and that revision.

        Read in pages pinned to the first page's revision, so the result is one consistent snapshot;
        watch from ``revision + 1`` to miss nothing.
        """
        start, end = _prefix_range(prefix)
        kvs: list[KeyValue] = []
        revision = 0
        while True:
            request = rpc.RangeRequest(key=start, range_end=end, limit=_PAGE, revision=revision)
            resp = await self._unary(self._kv.Range, request, "list", f"keys under {prefix!r}")
            if revision == 0:
                revision = resp.header.revision
            kvs.extend(_key_value(kv) for kv in resp.kvs)
            if not resp.more or not resp.kvs:
                return kvs, revision
            start = resp.kvs[-1].key + b"\0"

    async def put(self, key: str, value: bytes, *, lease: int = 0) -> int:
        """Write ``key``; returns the revision of the write."""
        request = rpc.PutRequest(key=_encode(key), value=value, lease=lease)
        resp = await self._unary(self._kv.Put, request, "write", f"key {key!r}")
        return int(resp.header.revision)

    async def delete(self, key: str) -> bool:
        """Delete ``key``; False if it did not exist."""
        request = rpc.DeleteRangeRequest(key=_encode(key))
        resp = await self._unary(self._kv.DeleteRange, request, "delete", f"key {key!r}")
        return bool(resp.deleted)

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every key under ``prefix``; returns how many there were."""
        start, end = _prefix_range(prefix)
        request = rpc.DeleteRangeRequest(key=start, range_end=end)
        resp = await self._unary(self._kv.DeleteRange, request, "delete", f"keys under {prefix!r}")
        return int(resp.deleted)

    # -- leases -------------------------------------------------------------------------------------

    async def grant_lease(self, ttl_seconds: int) -> int:
        """A new lease; etcd raises TTLs below its minimum (1.5 election timeouts, i.e. 2s here)."""
        request = rpc.LeaseGrantRequest(TTL=ttl_seconds, ID=0)
        resp = await self._unary(self._lease.LeaseGrant, request, "grant", f"a {ttl_seconds}s lease")
        if resp.error:
            raise SystemFailure(f"etcd at {self._endpoint} refused a {ttl_seconds}s lease ({resp.error}).")
        return int(resp.ID)

    async def revoke_lease(self, lease_id: int) -> None:
        """Revoke a lease, deleting its keys at once; a lease that is already gone is fine."""
        try:
            await self._unary(
                self._lease.LeaseRevoke, rpc.LeaseRevokeRequest(ID=lease_id), "revoke", f"lease {lease_id:x}"
            )
        except NotFound:
            pass

    def _lease_gone(self, lease_id: int) -> KvstoreLeaseExpired:
        return KvstoreLeaseExpired(
            f"lease {lease_id:x} no longer exists on etcd at {self._endpoint}; grant a new lease and rewrite its keys."
        )

    async def keepalive_once(self, lease_id: int) -> int:
        """Renew the lease once; returns its TTL. Raises ``KvstoreLeaseExpired`` if it is gone."""
        subject = f"lease {lease_id:x}"
        call = self._lease.LeaseKeepAlive(timeout=self._timeout)
        try:
            await call.write(rpc.LeaseKeepAliveRequest(ID=lease_id))
            resp = await call.read()
        except grpc.aio.AioRpcError as e:
            raise self._error(e, "renew", subject) from e
        finally:
            call.cancel()
        if resp is grpc.aio.EOF:
            raise KvstoreUnavailable(f"etcd at {self._endpoint} closed the keepalive stream of {subject}.")
        if resp.TTL <= 0:
            raise self._lease_gone(lease_id)
        return int(resp.TTL)

    async def keepalive_forever(self, lease_id: int, interval: float) -> None:
        """Renew the lease every ``interval`` seconds on one stream, until cancelled or it fails.

        Meant to run as a task (``asyncio.create_task(client.keepalive_forever(lease, ttl / 3))``). It
        ends by raising ``KvstoreUnavailable`` or ``KvstoreLeaseExpired``; what to do then (reconnect,
        grant a new lease, rewrite the keys) is the caller's decision.
        """
        subject = f"lease {lease_id:x}"
        call = self._lease.LeaseKeepAlive()
        try:
            while True:
                try:
                    await asyncio.wait_for(call.write(rpc.LeaseKeepAliveRequest(ID=lease_id)), self._timeout)
                    resp = await asyncio.wait_for(call.read(), self._timeout)
                except grpc.aio.AioRpcError as e:
                    raise self._error(e, "renew", subject) from e
                except TimeoutError as e:
                    raise KvstoreUnavailable(
                        f"etcd at {self._endpoint} did not renew {subject} within {self._timeout:g}s."
                    ) from e
                if resp is grpc.aio.EOF:
                    raise KvstoreUnavailable(f"etcd at {self._endpoint} closed the keepalive stream of {subject}.")
                if resp.TTL <= 0:
                    raise self._lease_gone(lease_id)
                await asyncio.sleep(interval)
        finally:
            call.cancel()

    # -- watch --------------------------------------------------------------------------------------

    async def watch_prefix(self, prefix: str, *, start_revision: int) -> AsyncGenerator[WatchEvent, None]:
        """Every put and delete under ``prefix`` from ``start_revision`` (inclusive), in revision order.

        It never ends by itself: it raises ``KvstoreUnavailable`` when the stream breaks (the caller
        lists again and watches from the new revision), ``KvstoreRevisionCompacted`` (a kind of
        unavailable) if ``start_revision`` is compacted, and ``KvstorePermissionDenied`` if the user may
        not read the prefix. Close it with ``aclose()`` (or ``contextlib.aclosing``) to end the stream.
        """
        subject = f"keys under {prefix!r}"
        start, end = _prefix_range(prefix)
        create = rpc.WatchCreateRequest(key=start, range_end=end, start_revision=start_revision)
        call = self._watch.Watch()
        try:
            await call.write(rpc.WatchRequest(create_request=create))
            while True:
                resp = await call.read()
                if resp is grpc.aio.EOF:
                    raise KvstoreUnavailable(f"etcd at {self._endpoint} ended the watch on {subject}; list again.")
                if resp.compact_revision:
                    raise KvstoreRevisionCompacted(
                        f"etcd at {self._endpoint} compacted revision {start_revision} away (now at "
                        f"{resp.compact_revision}) before the watch on {subject} could start; list again."
                    )
                if resp.canceled:
                    reason = resp.cancel_reason or "no reason given"
                    if "permission denied" in reason:
                        raise KvstorePermissionDenied(
                            f"etcd at {self._endpoint} refused to watch {subject} for user {self._user!r} "
                            f"({reason}); that user's role does not allow it."
                        )
                    raise KvstoreUnavailable(f"etcd at {self._endpoint} cancelled the watch on {subject} ({reason}).")
                for event in resp.events:
                    kv = event.kv
                    yield WatchEvent(
                        kind="delete" if event.type == rpc.Event.DELETE else "put",
                        key=_decode(kv.key),
                        value=bytes(kv.value),
                        mod_revision=kv.mod_revision,
                    )
        except grpc.aio.AioRpcError as e:
            raise self._error(e, "watch", subject) from e
        finally:
            call.cancel()

    # -- cluster ------------------------------------------------------------------------------------

    async def status(self) -> EtcdStatus:
        resp = await self._unary(self._maintenance.Status, rpc.StatusRequest(), "report", "its status")
        return EtcdStatus(
            version=resp.version,
            cluster_id=resp.header.cluster_id,
            member_id=resp.header.member_id,
            leader=resp.leader,
            db_size=resp.dbSize,
            raft_term=resp.raftTerm,
        )

    # -- users and roles (used by fleetnet.kvstore.users) -----------------------------------------------

    async def add_user(self, name: str) -> None:
        """Add a user without a password: it authenticates by its certificate's CN. Conflict if it exists."""
        request = rpc.AuthUserAddRequest(name=name, options=rpc.UserAddOptions(no_password=True))
        await self._unary(self._auth.UserAdd, request, "add", f"user {name!r}")

    async def delete_user(self, name: str) -> None:
        """Delete a user; NotFound if there is none."""
        await self._unary(self._auth.UserDelete, rpc.AuthUserDeleteRequest(name=name), "delete", f"user {name!r}")

    async def list_users(self) -> list[str]:
        resp = await self._unary(self._auth.UserList, rpc.AuthUserListRequest(), "list", "users")
        return list(resp.users)

    async def user_roles(self, name: str) -> list[str]:
        """The roles granted to a user; NotFound if there is none."""
        resp = await self._unary(self._auth.UserGet, rpc.AuthUserGetRequest(name=name), "read", f"user {name!r}")
        return list(resp.roles)

    async def add_role(self, name: str) -> None:
        """Add a role; Conflict if it exists."""
        await self._unary(self._auth.RoleAdd, rpc.AuthRoleAddRequest(name=name), "add", f"role {name!r}")

    async def grant_role(self, user: str, role: str) -> None:
        """Grant ``role`` to ``user`` (granting it again is a no-op in etcd)."""
        request = rpc.AuthUserGrantRoleRequest(user=user, role=role)
        await self._unary(self._auth.UserGrantRole, request, "grant", f"role {role!r} to user {user!r}")

    async def grant_permission(
        self,
        role: str,
        key: str,
        *,
        prefix: bool,
        permission: Literal["read", "write", "readwrite"] = "read",
    ) -> None:
        """Let ``role`` read/write ``key`` (or every key starting with it, when ``prefix``)."""
        start = _encode(key)
        perm = rpc.Permission(
            permType=_PERMISSIONS[permission], key=start, range_end=_range_end(start) if prefix else b""
        )
        request = rpc.AuthRoleGrantPermissionRequest(name=role, perm=perm)
        what = f"{permission} on {'prefix' if prefix else 'key'} {key!r} to role {role!r}"
        await self._unary(self._auth.RoleGrantPermission, request, "grant", what)

    async def enable_auth(self) -> None:
        """Turn on etcd auth: from now on every request is checked against its user's roles."""
        await self._unary(self._auth.AuthEnable, rpc.AuthEnableRequest(), "enable", "auth")
