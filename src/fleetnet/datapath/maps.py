"""Typed access to the datapath's maps for the control plane.

The value types and struct codecs are in :mod:`.codec`; the classes here wrap
:class:`~fleetnet.datapath.bpf.BpfMap` with the operations the agent needs:

- :class:`ServiceMaps` allocates backend and reverse-NAT ids and writes a service in the order the
  datapath can read at any moment (backends and rev-NAT, then slots, then the service entry);
  ``sync`` is a full, batched resync and ``list_services`` decodes what the kernel holds.
- :class:`IpcacheMap`, :class:`PolicyMap`, :class:`EndpointMap`, :class:`Metrics` and
  :class:`ConntrackMap` do the same for the other maps.

Each class keeps a mirror of what it wrote so that updates are diffs; the mirror is rebuilt from
the maps when the object is made, so an agent restart resumes from the pinned state. One writer
per map (the cluster's agent) is assumed.
"""

from __future__ import annotations

import struct
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from fleetnet.datapath.bpf import BpfMap
from fleetnet.datapath.codec import (
    BACKEND_ID,
    IPCACHE_KEY,
    MAX_BACKEND_ID,
    MAX_REV_NAT_ID,
    METRICS_VALUE,
    POLICY_KEY,
    REASON_NAMES,
    REV_NAT_ID,
    Backend,
    CtEntry,
    EndpointInfo,
    EndpointRecord,
    Frontend,
    IpcacheEntry,
    PolicyEntry,
    SyncStats,
    decode_backend,
    decode_ct,
    decode_endpoint,
    decode_ipcache_key,
    decode_lb4_key,
    decode_lb4_service,
    decode_policy,
    decode_remote_info,
    decode_slot_key,
    encode_backend,
    encode_endpoint_info,
    encode_endpoint_key,
    encode_ipcache_key,
    encode_lb4_key,
    encode_lb4_service,
    encode_policy_key,
    encode_policy_value,
    encode_remote_info,
    encode_rev_nat,
    encode_slot_key,
    ip_bytes,
)
from fleetnet.errors import InvalidInput, SystemFailure

__all__ = [
    "BACKEND_ID",
    "IPCACHE_KEY",
    "MAX_BACKEND_ID",
    "MAX_REV_NAT_ID",
    "METRICS_VALUE",
    "POLICY_KEY",
    "REASON_NAMES",
    "REV_NAT_ID",
    "Backend",
    "CtEntry",
    "EndpointInfo",
    "EndpointRecord",
    "Frontend",
    "IpcacheEntry",
    "PolicyEntry",
    "SyncStats",
    "decode_backend",
    "decode_ct",
    "decode_endpoint",
    "decode_ipcache_key",
    "decode_lb4_key",
    "decode_lb4_service",
    "decode_policy",
    "decode_remote_info",
    "decode_slot_key",
    "encode_backend",
    "encode_endpoint_info",
    "encode_endpoint_key",
    "encode_ipcache_key",
    "encode_lb4_key",
    "encode_lb4_service",
    "encode_policy_key",
    "encode_policy_value",
    "encode_remote_info",
    "encode_rev_nat",
    "encode_slot_key",
    "ip_bytes",
]


# --------------------------------------------------------------------------- services


@dataclass(slots=True)
class _Service:
    rev_nat_id: int
    backend_ids: list[int]
    dirty: bool = False  # the maps hold it half-written (a crash mid-update): rewrite it whole
    extent: int = 0  # slots that may exist in the map: 0..extent-1

    def slots_in_map(self) -> int:
        return max(self.extent, len(self.backend_ids))


class ServiceMaps:
    """Services, their backends and reverse NAT: fn_lb4_svc, fn_lb4_slots, fn_lb4_be, fn_lb4_revnat."""

    def __init__(self, services: BpfMap, slots: BpfMap, backends: BpfMap, rev_nat: BpfMap) -> None:
        self._svc_map = services
        self._slot_map = slots
        self._be_map = backends
        self._revnat_map = rev_nat
        self._restore()

    # -- mirror of the maps
    def _restore(self) -> None:
        self._services: dict[Frontend, _Service] = {}
        self._backends: dict[int, Backend] = {}
        self._backend_ids: dict[Backend, int] = {}
        self._refs: Counter[int] = Counter()
        for key, value in self._be_map.items():
            (bid,) = BACKEND_ID.unpack(key)
            backend = decode_backend(value)
            self._backends[bid] = backend
            self._backend_ids.setdefault(backend, bid)
        slots: dict[bytes, dict[int, int]] = {}
        for key, value in self._slot_map.items():
            svc_key, slot = decode_slot_key(key)
            slots.setdefault(svc_key, {})[slot] = BACKEND_ID.unpack(value)[0]
        rev_nats = {REV_NAT_ID.unpack(k)[0] for k in self._revnat_map}
        counts: dict[bytes, int] = {}
        for key, value in self._svc_map.items():
            count, rev_nat_id, _flags = decode_lb4_service(value)
            mine = slots.get(key, {})
            ids = [mine[i] for i in range(count) if i in mine and mine[i] in self._backends]
            dirty = len(ids) != count or rev_nat_id not in rev_nats
            extent = max(count, max(mine, default=-1) + 1)
            self._services[decode_lb4_key(key)] = _Service(rev_nat_id, ids, dirty, extent)
            self._refs.update(ids)
            counts[key] = count
        used_rev_nat = {s.rev_nat_id for s in self._services.values()}
        self._stale_rev_nat = [REV_NAT_ID.pack(r) for r in rev_nats if r not in used_rev_nat]
        self._stale_slots = [
            encode_slot_key(k, slot) for k, m in slots.items() for slot in m if slot >= counts.get(k, 0)
        ]
        self._next_backend_id = max(self._backends, default=0) + 1
        self._next_rev_nat_id = max(used_rev_nat, default=0) + 1

    def _alloc_backend_id(self) -> int:
        # Ids grow rather than being reused at once: a CT entry may still name a deleted backend's
        # id, and it must not suddenly lead to another backend.
        for _ in range(2):
            while self._next_backend_id <= MAX_BACKEND_ID:
                bid = self._next_backend_id
                self._next_backend_id += 1
                if bid not in self._backends:
                    return bid
            self._next_backend_id = 1
        raise SystemFailure("no backend id is free; delete services before adding more.")

    def _alloc_rev_nat_id(self, taken: set[int]) -> int:
        for _ in range(2):
            while self._next_rev_nat_id <= MAX_REV_NAT_ID:
                rid = self._next_rev_nat_id
                self._next_rev_nat_id += 1
                if rid not in taken:
                    return rid
            self._next_rev_nat_id = 1
        raise SystemFailure(f"all {MAX_REV_NAT_ID} service ids are in use; delete services before adding more.")

    # -- public API
    def upsert_service(self, frontend: Frontend, backends: Sequence[Backend]) -> None:
        """Creates or replaces one service; an empty backend list makes the VIP drop its traffic."""
        self._apply({frontend: list(backends)}, [])

    def delete_service(self, frontend: Frontend) -> bool:
        """Deletes a service; False when it did not exist."""
        if frontend not in self._services:
            return False
        self._apply({}, [frontend])
        return True

    def sync(self, desired: Mapping[Frontend, Sequence[Backend]]) -> SyncStats:
        """Makes the maps hold exactly ``desired``: changed services are rewritten, absent ones
        deleted, everything in a few batched calls."""
        upserts: dict[Frontend, list[Backend]] = {}
        added = updated = 0
        for frontend, backends in desired.items():
            want = list(backends)
            have = self._services.get(frontend)
            if have is None:
                added += 1
            elif have.dirty or [self._backends[i] for i in have.backend_ids] != want:
                updated += 1
            else:
                continue
            upserts[frontend] = want
        deletes = [f for f in self._services if f not in desired]
        self._apply(upserts, deletes, collect_garbage=True)
        return SyncStats(added, updated, len(deletes))

    def get(self, frontend: Frontend) -> list[Backend] | None:
        """The backends of one service as this writer last wrote them."""
        svc = self._services.get(frontend)
        return None if svc is None else [self._backends[i] for i in svc.backend_ids]

    def list_services(self) -> dict[Frontend, list[Backend]]:
        """Every service with its backends in slot order, decoded from the maps themselves."""
        backends = {BACKEND_ID.unpack(k)[0]: decode_backend(v) for k, v in self._be_map.items()}
        slots: dict[bytes, dict[int, int]] = {}
        for key, value in self._slot_map.items():
            svc_key, slot = decode_slot_key(key)
            slots.setdefault(svc_key, {})[slot] = BACKEND_ID.unpack(value)[0]
        out: dict[Frontend, list[Backend]] = {}
        for key, value in self._svc_map.items():
            count, _rev_nat_id, _flags = decode_lb4_service(value)
            mine = slots.get(key, {})
            ids = (mine.get(i) for i in range(count))
            out[decode_lb4_key(key)] = [backends[i] for i in ids if i is not None and i in backends]
        return out

    def rev_nat_ids(self) -> dict[Frontend, int]:
        return {f: s.rev_nat_id for f, s in self._services.items()}

    def backend_ids(self) -> dict[int, Backend]:
        return dict(self._backends)

    # -- the one writer
    def _apply(
        self, upserts: Mapping[Frontend, list[Backend]], deletes: Sequence[Frontend], collect_garbage: bool = False
    ) -> None:
        try:
            self._write(upserts, deletes, collect_garbage)
        except BaseException:
            self._restore()  # the mirror may be ahead of the maps: re-read what the kernel holds
            raise

    def _write(
        self, upserts: Mapping[Frontend, list[Backend]], deletes: Sequence[Frontend], collect_garbage: bool
    ) -> None:
        new_be_keys: list[bytes] = []
        new_be_vals: list[bytes] = []
        revnat_keys: list[bytes] = []
        revnat_vals: list[bytes] = []
        slot_keys: list[bytes] = []
        slot_vals: list[bytes] = []
        svc_keys: list[bytes] = []
        svc_vals: list[bytes] = []
        drop_slots: list[bytes] = []
        drop_svcs: list[bytes] = []
        drop_revnat: list[bytes] = []
        refs = Counter(self._refs)
        taken = {s.rev_nat_id for s in self._services.values()}
        planned: dict[Frontend, _Service] = {}

        for frontend, backends in upserts.items():
            if len(backends) > 0xFFFF:
                raise InvalidInput(f"service {frontend} has {len(backends)} backends; at most 65535 fit.")
            old = self._services.get(frontend)
            ids: list[int] = []
            for backend in backends:
                bid = self._backend_ids.get(backend)
                if bid is None:
                    bid = self._alloc_backend_id()
                    self._backend_ids[backend] = bid
                    self._backends[bid] = backend
                    new_be_keys.append(BACKEND_ID.pack(bid))
                    new_be_vals.append(encode_backend(backend))
                ids.append(bid)
            svc_key = encode_lb4_key(frontend)
            if old is None:
                rev_nat_id = self._alloc_rev_nat_id(taken)
                taken.add(rev_nat_id)
            else:
                rev_nat_id = old.rev_nat_id
            if old is None or old.dirty:
                revnat_keys.append(REV_NAT_ID.pack(rev_nat_id))
                revnat_vals.append(encode_rev_nat(frontend))
            old_ids = [] if old is None else old.backend_ids
            rewrite = old is None or old.dirty
            for slot, bid in enumerate(ids):
                if rewrite or slot >= len(old_ids) or old_ids[slot] != bid:
                    slot_keys.append(encode_slot_key(svc_key, slot))
                    slot_vals.append(BACKEND_ID.pack(bid))
            if rewrite or len(old_ids) != len(ids):
                svc_keys.append(svc_key)
                svc_vals.append(encode_lb4_service(len(ids), rev_nat_id))
            extent = 0 if old is None else old.slots_in_map()
            drop_slots.extend(encode_slot_key(svc_key, slot) for slot in range(len(ids), extent))
            refs.subtract(old_ids)
            refs.update(ids)
            planned[frontend] = _Service(rev_nat_id, ids)

        for frontend in deletes:
            old = self._services.get(frontend)
            if old is None:
                continue
            svc_key = encode_lb4_key(frontend)
            drop_svcs.append(svc_key)
            drop_slots.extend(encode_slot_key(svc_key, slot) for slot in range(old.slots_in_map()))
            drop_revnat.append(REV_NAT_ID.pack(old.rev_nat_id))
            refs.subtract(old.backend_ids)

        if collect_garbage:
            drop_slots.extend(self._stale_slots)
            drop_revnat.extend(self._stale_rev_nat)
        unused = [bid for bid in self._backends if refs[bid] <= 0]

        # Order matters: what a service entry points to exists before the entry says so, and
        # goes away only after the entry stopped pointing to it.
        self._be_map.update_batch(new_be_keys, new_be_vals)
        self._revnat_map.update_batch(revnat_keys, revnat_vals)
        self._slot_map.update_batch(slot_keys, slot_vals)
        self._svc_map.update_batch(svc_keys, svc_vals)
        self._svc_map.delete_batch(drop_svcs)
        self._slot_map.delete_batch(drop_slots)
        self._revnat_map.delete_batch(drop_revnat)
        self._be_map.delete_batch([BACKEND_ID.pack(bid) for bid in unused])

        for frontend in deletes:
            self._services.pop(frontend, None)
        self._services.update(planned)
        for bid in unused:
            backend = self._backends.pop(bid)
            if self._backend_ids.get(backend) == bid:
                del self._backend_ids[backend]
        self._refs = Counter({bid: n for bid, n in refs.items() if n > 0})
        if collect_garbage:
            self._stale_slots = []
            self._stale_rev_nat = []


# --------------------------------------------------------------------------- ipcache


class IpcacheMap:
    """IP/prefix -> identity (fn_ipcache4, longest prefix match)."""

    def __init__(self, m: BpfMap) -> None:
        self._map = m

    def upsert(self, cidr: str, identity: int, cluster_id: int = 0) -> None:
        if not 1 <= identity <= 0xFFFFFFFF:
            raise InvalidInput(f"identity {identity} for {cidr} is out of range; use 1..2^32-1 (0 means any).")
        if not 0 <= cluster_id <= 0xFFFF:
            raise InvalidInput(f"cluster id {cluster_id} for {cidr} is out of range; use 0..65535.")
        self._map.update(encode_ipcache_key(cidr), encode_remote_info(IpcacheEntry(identity, cluster_id)))

    def delete(self, cidr: str) -> bool:
        return self._map.delete(encode_ipcache_key(cidr))

    def lookup(self, ip: str) -> IpcacheEntry | None:
        """The entry of the longest prefix holding ip, as the datapath sees it."""
        raw = self._map.lookup(IPCACHE_KEY.pack(32, ip_bytes(ip)))
        return None if raw is None else decode_remote_info(raw)

    def items(self) -> dict[str, IpcacheEntry]:
        return {decode_ipcache_key(k): decode_remote_info(v) for k, v in self._map.items()}

    def sync(self, desired: Mapping[str, IpcacheEntry]) -> SyncStats:
        """Makes the map hold exactly ``desired`` (prefix -> entry)."""
        want = {encode_ipcache_key(c): encode_remote_info(e) for c, e in desired.items()}
        have = dict(self._map.items())
        changed = [(k, v) for k, v in want.items() if have.get(k) != v]
        for key, value in changed:
            self._map.update(key, value)
        stale = [k for k in have if k not in want]
        self._map.delete_batch(stale)
        added = sum(1 for k, _ in changed if k not in have)
        return SyncStats(added, len(changed) - added, len(stale))


# --------------------------------------------------------------------------- policy


class PolicyMap:
    """Per-endpoint policy entries (fn_policy)."""

    def __init__(self, m: BpfMap) -> None:
        self._map = m
        self._by_endpoint: dict[int, dict[bytes, bytes]] = {}
        for key, value in m.items():
            endpoint_id = POLICY_KEY.unpack(key)[1]
            self._by_endpoint.setdefault(endpoint_id, {})[key] = value

    def replace_endpoint(self, endpoint_id: int, entries: Iterable[PolicyEntry]) -> SyncStats:
        """Makes the endpoint's entries exactly ``entries``; an allow and a deny for the same
        key collapse to the deny. New and changed entries are written before stale ones go."""
        want: dict[bytes, bytes] = {}
        for entry in entries:
            key = encode_policy_key(endpoint_id, entry)
            if entry.deny or key not in want:
                want[key] = encode_policy_value(entry)
        have = self._by_endpoint.get(endpoint_id, {})
        changed = [(k, v) for k, v in want.items() if have.get(k) != v]
        stale = [k for k in have if k not in want]
        try:
            self._map.update_batch([k for k, _ in changed], [v for _, v in changed])
            self._map.delete_batch(stale)
        except BaseException:
            self._reload_endpoint(endpoint_id)
            raise
        if want:
            self._by_endpoint[endpoint_id] = want
        else:
            self._by_endpoint.pop(endpoint_id, None)
        added = sum(1 for k, _ in changed if k not in have)
        return SyncStats(added, len(changed) - added, len(stale))

    def delete_endpoint(self, endpoint_id: int) -> int:
        return self.replace_endpoint(endpoint_id, []).deleted

    def entries(self, endpoint_id: int) -> list[PolicyEntry]:
        """The endpoint's entries as the kernel holds them."""
        out = []
        for key, value in self._map.items():
            eid, entry = decode_policy(key, value)
            if eid == endpoint_id:
                out.append(entry)
        return sorted(out)

    def endpoints(self) -> set[int]:
        return set(self._by_endpoint)

    def _reload_endpoint(self, endpoint_id: int) -> None:
        mine = {k: v for k, v in self._map.items() if POLICY_KEY.unpack(k)[1] == endpoint_id}
        if mine:
            self._by_endpoint[endpoint_id] = mine
        else:
            self._by_endpoint.pop(endpoint_id, None)


# --------------------------------------------------------------------------- endpoints


class EndpointMap:
    """Local endpoints (fn_endpoints), keyed by pod IP, with their veth ifindex."""

    def __init__(self, m: BpfMap) -> None:
        self._map = m

    def upsert(self, ifindex: int, info: EndpointInfo, netns_inode: int = 0) -> None:
        if not 1 <= ifindex <= 0xFFFFFFFF:
            raise InvalidInput(f"ifindex {ifindex} of endpoint {info.ip} is not a device index.")
        self._map.update(encode_endpoint_key(info.ip), encode_endpoint_info(ifindex, info, netns_inode))

    def get(self, ip: str) -> EndpointRecord | None:
        key = encode_endpoint_key(ip)
        raw = self._map.lookup(key)
        return None if raw is None else decode_endpoint(key, raw)

    def set_enforcement(self, ip: str, *, ingress: bool, egress: bool) -> None:
        """Turns policy enforcement of one endpoint on or off, per direction."""
        rec = self.get(ip)
        if rec is None:
            raise InvalidInput(f"no endpoint has address {ip}; attach its veth first.")
        info = EndpointInfo(rec.info.endpoint_id, rec.info.identity, ip, ingress, egress)
        self.upsert(rec.ifindex, info, rec.netns_inode)

    def delete(self, ip: str) -> bool:
        return self._map.delete(encode_endpoint_key(ip))

    def items(self) -> dict[str, EndpointRecord]:
        out = {}
        for key, value in self._map.items():
            rec = decode_endpoint(key, value)
            out[rec.info.ip] = rec
        return out


# --------------------------------------------------------------------------- metrics and CT


class Metrics:
    """Packet counters by verdict (fn_metrics, per CPU)."""

    def __init__(self, m: BpfMap) -> None:
        self._map = m

    def read(self) -> dict[str, int]:
        """Packets per reason name ("forwarded", "DROP_POLICY", ...), summed over CPUs; only
        reasons that counted something appear."""
        return {name: packets for name, (packets, _bytes) in self.read_detailed().items()}

    def read_detailed(self) -> dict[str, tuple[int, int]]:
        """(packets, bytes) per reason name."""
        out: dict[str, tuple[int, int]] = {}
        slot = (METRICS_VALUE.size + 7) // 8 * 8
        for key, raw in self._map.items():
            (reason,) = struct.unpack("=I", key)
            packets = nbytes = 0
            for off in range(0, len(raw), slot):
                p, b = METRICS_VALUE.unpack_from(raw, off)
                packets += p
                nbytes += b
            if packets:
                out[REASON_NAMES.get(reason, f"reason_{reason}")] = (packets, nbytes)
        return out


class ConntrackMap:
    """The connection tracking table (fn_ct4), for inspection and flushing."""

    def __init__(self, m: BpfMap) -> None:
        self._map = m

    def entries(self) -> list[CtEntry]:
        now = time.monotonic()  # the datapath's clock is CLOCK_MONOTONIC in seconds
        return [decode_ct(k, v, now) for k, v in self._map.items()]

    def flush(self) -> int:
        """Forgets every connection: established flows then go through policy again."""
        return self._map.clear()
