"""The one place in fleetnet that calls bpf(2).

Python has no binding for pinned BPF maps that is both small and fast (pyroute2 has no map API,
BCC needs its own modules, bpftool costs a process per call), so this module talks to the kernel
directly through ``syscall(__NR_bpf, ...)`` with ctypes. Each :class:`BpfMap` keeps one
preallocated buffer laid out as ``[attr | key | value]``: a lookup or update copies the key and
value into it through a memoryview and makes a single FFI call (about 2 µs; batches do 0.5 µs
per element, see docs in ``shared/reference/datapath-measurements.md``).

Errors come out as :class:`BpfError` (a :class:`fleetnet.errors.SystemFailure`) carrying the errno
and one sentence that names the map or pin, with subclasses for the cases callers handle:

    SystemFailure
    └── BpfError               any failed bpf(2) call; .errno
        ├── PinNotFound        nothing pinned at that path (ENOENT on BPF_OBJ_GET)
        └── MapFull            an update found no room (E2BIG/ENOSPC/ENOMEM)
"""

from __future__ import annotations

import ctypes
import errno as errno_codes
import os
import platform
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from fleetnet.errors import SystemFailure

__all__ = [
    "BpfError",
    "BpfMap",
    "LinkInfo",
    "MapFull",
    "MapInfo",
    "PinNotFound",
    "ProgInfo",
    "close_fd",
    "link_create_tcx",
    "link_detach",
    "link_info",
    "link_update",
    "map_info",
    "obj_get",
    "obj_pin",
    "possible_cpus",
    "prog_info",
]

_NR_BPF = {"x86_64": 321, "aarch64": 280, "arm64": 280, "riscv64": 280, "ppc64le": 361, "s390x": 351}

# enum bpf_cmd
_MAP_LOOKUP_ELEM = 1
_MAP_UPDATE_ELEM = 2
_MAP_DELETE_ELEM = 3
_MAP_GET_NEXT_KEY = 4
_OBJ_PIN = 6
_OBJ_GET = 7
_OBJ_GET_INFO_BY_FD = 15
_MAP_LOOKUP_BATCH = 24
_MAP_UPDATE_BATCH = 26
_MAP_DELETE_BATCH = 27
_LINK_CREATE = 28
_LINK_UPDATE = 29
_LINK_DETACH = 34

# enum bpf_map_type, the per-CPU ones (their values hold one slot per possible CPU)
_PERCPU_TYPES = {5, 6, 10, 21}
# enum bpf_attach_type / bpf_link_type (kernel >= 6.6; not in Debian 12's uapi headers)
TCX_INGRESS = 46
TCX_EGRESS = 47
LINK_TYPE_TCX = 11

BPF_ANY = 0
BPF_NOEXIST = 1
BPF_EXIST = 2

_ATTR_SIZE = 32  # the elem commands use {map_fd, pad, key, value|next_key, flags}
_BATCH_ATTR_SIZE = 56
_BATCH_CHUNK = 4096
_ENOTSUPP = 524  # kernel-internal "operation not supported", leaks out of bpf(2)

_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long
_NR = ctypes.c_long(_NR_BPF.get(platform.machine(), 321))


class BpfError(SystemFailure):
    """A bpf(2) call failed; ``errno`` is the kernel's error number."""

    def __init__(self, message: str, errno: int) -> None:
        super().__init__(message)
        self.errno = errno


class PinNotFound(BpfError):
    pass


class MapFull(BpfError):
    pass


def _error(what: str, err: int, hint: str = "") -> BpfError:
    text = f"{what} failed: {os.strerror(err)} (errno {err})"
    if err == errno_codes.EPERM:
        hint = hint or "fleetnet needs root (CAP_BPF and CAP_NET_ADMIN) for its datapath"
    sentence = f"{text}; {hint}." if hint else f"{text}."
    if err == errno_codes.ENOENT and what.startswith("opening pin"):
        return PinNotFound(sentence, err)
    if err in (errno_codes.E2BIG, errno_codes.ENOSPC, errno_codes.ENOMEM) and "update" in what:
        return MapFull(sentence, err)
    return BpfError(sentence, err)


def _bpf(cmd: int, attr: ctypes.Array[ctypes.c_uint8], what: str, hint: str = "") -> int:
    ret = _syscall(_NR, cmd, attr, len(attr))
    if ret < 0:
        raise _error(what, ctypes.get_errno(), hint)
    return int(ret)


def _attr(size: int = 128) -> ctypes.Array[ctypes.c_uint8]:
    return (ctypes.c_uint8 * size)()


def obj_get(path: str | os.PathLike[str]) -> int:
    """Opens a pinned map, program or link; returns a new file descriptor."""
    p = ctypes.create_string_buffer(os.fsencode(path))
    a = _attr()
    struct.pack_into("=Q", a, 0, ctypes.addressof(p))
    return _bpf(_OBJ_GET, a, f"opening pin {os.fspath(path)}", "is the datapath loaded and the bpffs mounted?")


def obj_pin(fd: int, path: str | os.PathLike[str]) -> None:
    """Pins the object behind fd at path, which must be on a bpffs and not exist yet."""
    p = ctypes.create_string_buffer(os.fsencode(path))
    a = _attr()
    struct.pack_into("=QI", a, 0, ctypes.addressof(p), fd)
    _bpf(_OBJ_PIN, a, f"pinning at {os.fspath(path)}", "the path must be on a bpffs and not exist yet")


def close_fd(fd: int) -> None:
    os.close(fd)


def _obj_info(fd: int, size: int, what: str) -> bytes:
    info = ctypes.create_string_buffer(size)
    a = _attr()
    struct.pack_into("=IIQ", a, 0, fd, size, ctypes.addressof(info))
    _bpf(_OBJ_GET_INFO_BY_FD, a, what)
    return info.raw


@dataclass(frozen=True, slots=True)
class MapInfo:
    type: int
    id: int
    key_size: int
    value_size: int
    max_entries: int
    flags: int
    name: str


def map_info(fd: int) -> MapInfo:
    raw = _obj_info(fd, 128, f"reading map info of fd {fd}")
    typ, mid, ksz, vsz, maxe, flags, name = struct.unpack_from("=6I16s", raw)
    return MapInfo(typ, mid, ksz, vsz, maxe, flags, name.rstrip(b"\0").decode())


@dataclass(frozen=True, slots=True)
class ProgInfo:
    type: int
    id: int
    tag: str
    name: str


def prog_info(fd: int) -> ProgInfo:
    raw = _obj_info(fd, 256, f"reading program info of fd {fd}")
    typ, pid, tag = struct.unpack_from("=II8s", raw)
    (name,) = struct.unpack_from("=16s", raw, 64)
    return ProgInfo(typ, pid, tag.hex(), name.rstrip(b"\0").decode())


@dataclass(frozen=True, slots=True)
class LinkInfo:
    type: int
    id: int
    prog_id: int
    ifindex: int  # tcx links: 0 once the device is gone
    attach_type: int


def link_info(fd: int) -> LinkInfo:
    raw = _obj_info(fd, 64, f"reading link info of fd {fd}")
    typ, lid, prog_id = struct.unpack_from("=III", raw)
    ifindex, attach_type = struct.unpack_from("=II", raw, 16)
    return LinkInfo(typ, lid, prog_id, ifindex, attach_type)


def link_create_tcx(prog_fd: int, ifindex: int, *, ingress: bool) -> int:
    """Attaches a sched_cls program to a device with tcx (kernel >= 6.6); returns the link fd.

    The ifindex is resolved in the network namespace of the calling thread."""
    a = _attr()
    struct.pack_into("=IIII", a, 0, prog_fd, ifindex, TCX_INGRESS if ingress else TCX_EGRESS, 0)
    side = "ingress" if ingress else "egress"
    return _bpf(_LINK_CREATE, a, f"attaching a tcx {side} link to ifindex {ifindex}")


def link_update(link_fd: int, prog_fd: int) -> None:
    """Atomically points a link at another program: no packet sees no program in between."""
    a = _attr()
    struct.pack_into("=IIII", a, 0, link_fd, prog_fd, 0, 0)
    _bpf(_LINK_UPDATE, a, f"updating link fd {link_fd}")


def link_detach(link_fd: int) -> None:
    """Detaches a link now; dropping its last reference instead detaches it later, from a
    kernel work queue, and a new attachment made meanwhile would find the old one (EEXIST)."""
    a = _attr()
    struct.pack_into("=I", a, 0, link_fd)
    _bpf(_LINK_DETACH, a, f"detaching link fd {link_fd}")


def possible_cpus() -> int:
    """Number of possible CPUs: per-CPU map values hold one 8-byte aligned slot for each."""
    text = Path("/sys/devices/system/cpu/possible").read_text().strip()
    count = 0
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        count += int(hi or lo) - int(lo) + 1
    return count


class BpfMap:
    """A pinned BPF map, opened by path; keys and values are raw bytes of the map's sizes.

    Not thread-safe: each instance reuses one buffer for every call."""

    def __init__(self, path: str | os.PathLike[str], name: str | None = None) -> None:
        self.path = os.fspath(path)
        self.name = name or os.path.basename(self.path)
        self.fd = obj_get(self.path)
        try:
            self.info = map_info(self.fd)
        except BpfError:
            os.close(self.fd)
            raise
        self.key_size = self.info.key_size
        self.value_size = self.info.value_size
        self.percpu = self.info.type in _PERCPU_TYPES
        self.ncpus = possible_cpus() if self.percpu else 1
        self._slot = (self.value_size + 7) // 8 * 8
        self.value_len = self._slot * self.ncpus if self.percpu else self.value_size
        k, v = self.key_size, self.value_len
        # [attr 32 | key | value-or-next-key] for lookup, update and get_next_key
        self._buf = (ctypes.c_uint8 * (_ATTR_SIZE + k + max(v, k)))()
        base = ctypes.addressof(self._buf)
        struct.pack_into("=IIQQ", self._buf, 0, self.fd, 0, base + _ATTR_SIZE, base + _ATTR_SIZE + k)
        self._mv = memoryview(self._buf).cast("B")
        self._k = slice(_ATTR_SIZE, _ATTR_SIZE + k)
        self._v = slice(_ATTR_SIZE + k, _ATTR_SIZE + k + v)
        self._nk = slice(_ATTR_SIZE + k, _ATTR_SIZE + 2 * k)
        self._attr = ctypes.c_void_p(base)
        self._flags = 0  # the attr's flags field: only update sets it, the other commands need 0
        # DELETE must see value=0 and flags=0, so it has its own attr pointing at the same key.
        self._dbuf = _attr(_ATTR_SIZE)
        struct.pack_into("=IIQ", self._dbuf, 0, self.fd, 0, base + _ATTR_SIZE)
        self._dattr = ctypes.c_void_p(ctypes.addressof(self._dbuf))
        # GET_NEXT_KEY with key=NULL returns the first key.
        self._first = _attr(_ATTR_SIZE)
        struct.pack_into("=IIQQ", self._first, 0, self.fd, 0, 0, base + _ATTR_SIZE + k)
        self._fattr = ctypes.c_void_p(ctypes.addressof(self._first))

    def __repr__(self) -> str:
        return f"BpfMap({self.path!r}, key={self.key_size}, value={self.value_size})"

    def __enter__(self) -> BpfMap:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def _fail(self, op: str) -> BpfError:
        err = ctypes.get_errno()
        hint = ""
        if err in (errno_codes.E2BIG, errno_codes.ENOSPC) and op == "update":
            hint = f"the map is full ({self.info.max_entries} entries); delete entries first"
        elif err == errno_codes.EBADF:
            hint = "the map was closed"
        return _error(f"bpf map {self.name}: {op}", err, hint)

    def _set_flags(self, flags: int) -> None:
        struct.pack_into("=Q", self._buf, 24, flags)
        self._flags = flags

    def _check_key(self, key: bytes) -> None:
        if len(key) != self.key_size:
            raise ValueError(f"bpf map {self.name}: key of {len(key)} bytes, the map wants {self.key_size}")

    def lookup(self, key: bytes) -> bytes | None:
        """The value stored under key (per-CPU maps: every CPU's slot, concatenated), or None."""
        self._check_key(key)
        self._mv[self._k] = key
        if self._flags:
            self._set_flags(0)
        if _syscall(_NR, _MAP_LOOKUP_ELEM, self._attr, _ATTR_SIZE) == 0:
            return bytes(self._mv[self._v])
        if ctypes.get_errno() == errno_codes.ENOENT:
            return None
        raise self._fail("lookup")

    def lookup_percpu(self, key: bytes) -> list[bytes] | None:
        """The value of each possible CPU for a per-CPU map."""
        raw = self.lookup(key)
        if raw is None:
            return None
        return [raw[i * self._slot : i * self._slot + self.value_size] for i in range(self.ncpus)]

    def update(self, key: bytes, value: bytes, flags: int = BPF_ANY) -> None:
        if len(key) != self.key_size or len(value) != self.value_len:
            raise ValueError(
                f"bpf map {self.name}: entry of {len(key)}+{len(value)} bytes, "
                f"the map wants {self.key_size}+{self.value_len}"
            )
        self._mv[self._k] = key
        self._mv[self._v] = value
        if flags != self._flags:
            self._set_flags(flags)
        if _syscall(_NR, _MAP_UPDATE_ELEM, self._attr, _ATTR_SIZE) != 0:
            raise self._fail("update")

    def delete(self, key: bytes) -> bool:
        """Deletes key; False when it was not there."""
        self._check_key(key)
        self._mv[self._k] = key
        if _syscall(_NR, _MAP_DELETE_ELEM, self._dattr, _ATTR_SIZE) == 0:
            return True
        if ctypes.get_errno() == errno_codes.ENOENT:
            return False
        raise self._fail("delete")

    def __iter__(self) -> Iterator[bytes]:
        return self.keys()

    def keys(self) -> Iterator[bytes]:
        """Every key, by BPF_MAP_GET_NEXT_KEY (a hash map restarts from its start if the current
        key is deleted meanwhile, so a key can repeat under concurrent deletes)."""
        attr = self._fattr
        while True:
            if self._flags:
                self._set_flags(0)
            if _syscall(_NR, _MAP_GET_NEXT_KEY, attr, _ATTR_SIZE) != 0:
                if ctypes.get_errno() == errno_codes.ENOENT:
                    return
                raise self._fail("get_next_key")
            key = bytes(self._mv[self._nk])
            yield key
            self._mv[self._k] = key
            attr = self._attr

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        """Every (key, value) pair; by BPF_MAP_LOOKUP_BATCH where the map type has it."""
        try:
            yield from self._items_batch()
            return
        except _NoBatch:
            pass
        for key in list(self.keys()):
            value = self.lookup(key)
            if value is not None:
                yield key, value

    def _items_batch(self) -> Iterator[tuple[bytes, bytes]]:
        k, v = self.key_size, self.value_len
        chunk = _BATCH_CHUNK
        token_in = ctypes.create_string_buffer(max(k, 8))
        token_out = ctypes.create_string_buffer(max(k, 8))
        first = True
        yielded = False
        while True:
            keys = ctypes.create_string_buffer(k * chunk)
            values = ctypes.create_string_buffer(v * chunk)
            a = _attr(_BATCH_ATTR_SIZE)
            struct.pack_into(
                "=QQQQII",
                a,
                0,
                0 if first else ctypes.addressof(token_in),
                ctypes.addressof(token_out),
                ctypes.addressof(keys),
                ctypes.addressof(values),
                chunk,
                self.fd,
            )
            ret = _syscall(_NR, _MAP_LOOKUP_BATCH, a, _BATCH_ATTR_SIZE)
            err = ctypes.get_errno() if ret < 0 else 0
            if ret < 0 and err in (errno_codes.EINVAL, errno_codes.EOPNOTSUPP, _ENOTSUPP) and not yielded:
                raise _NoBatch
            if ret < 0 and err == errno_codes.ENOSPC:  # a hash bucket holds more than chunk entries
                chunk *= 4
                continue
            (count,) = struct.unpack_from("=I", a, 32)
            kr, vr = keys.raw, values.raw
            for i in range(count):
                yielded = True
                yield kr[i * k : (i + 1) * k], vr[i * v : (i + 1) * v]
            if ret < 0:
                if err == errno_codes.ENOENT:
                    return
                ctypes.set_errno(err)
                raise self._fail("lookup_batch")
            ctypes.memmove(token_in, token_out, max(k, 8))
            first = False

    def update_batch(self, keys: Sequence[bytes], values: Sequence[bytes], flags: int = BPF_ANY) -> None:
        """Writes many entries with one BPF_MAP_UPDATE_BATCH call per chunk."""
        if len(keys) != len(values):
            raise ValueError(f"bpf map {self.name}: {len(keys)} keys but {len(values)} values")
        if not keys:
            return
        kb = b"".join(keys)
        vb = b"".join(values)
        if len(kb) != self.key_size * len(keys) or len(vb) != self.value_len * len(values):
            raise ValueError(f"bpf map {self.name}: batch entries do not all have the map's sizes")
        kbuf = ctypes.create_string_buffer(kb, len(kb))
        vbuf = ctypes.create_string_buffer(vb, len(vb))
        a = _attr(_BATCH_ATTR_SIZE)
        struct.pack_into(
            "=QQQQIIQ",
            a,
            0,
            0,
            0,
            ctypes.addressof(kbuf),
            ctypes.addressof(vbuf),
            len(keys),
            self.fd,
            flags,
        )
        if _syscall(_NR, _MAP_UPDATE_BATCH, a, _BATCH_ATTR_SIZE) != 0:
            err = ctypes.get_errno()
            if err in (errno_codes.EINVAL, errno_codes.EOPNOTSUPP, _ENOTSUPP):
                for key, value in zip(keys, values, strict=True):  # map type without batch ops
                    self.update(key, value, flags)
                return
            ctypes.set_errno(err)
            raise self._fail("update")

    def delete_batch(self, keys: Sequence[bytes]) -> int:
        """Deletes many keys; returns how many were there. Missing keys are skipped."""
        if not keys:
            return 0
        kb = b"".join(keys)
        if len(kb) != self.key_size * len(keys):
            raise ValueError(f"bpf map {self.name}: batch keys do not all have the map's key size")
        kbuf = ctypes.create_string_buffer(kb, len(kb))
        a = _attr(_BATCH_ATTR_SIZE)
        struct.pack_into("=QQQQII", a, 0, 0, 0, ctypes.addressof(kbuf), 0, len(keys), self.fd)
        if _syscall(_NR, _MAP_DELETE_BATCH, a, _BATCH_ATTR_SIZE) == 0:
            return len(keys)
        # ENOENT stops the batch at the first missing key; finish one by one from there.
        (done,) = struct.unpack_from("=I", a, 32)
        err = ctypes.get_errno()
        if err not in (errno_codes.ENOENT, errno_codes.EINVAL, errno_codes.EOPNOTSUPP, _ENOTSUPP):
            ctypes.set_errno(err)
            raise self._fail("delete")
        if err != errno_codes.ENOENT:
            done = 0
        return done + sum(self.delete(key) for key in keys[done:])

    def clear(self) -> int:
        """Deletes every entry; returns how many."""
        return self.delete_batch(list(dict.fromkeys(self.keys())))


class _NoBatch(Exception):
    """The map type has no batch lookup; fall back to key iteration."""
