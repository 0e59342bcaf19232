"""The protobuf field numbers of Kubernetes' Go types, read from a Go client's own binary.

Go clients (kubectl among them) send built-in objects as ``application/vnd.kubernetes.protobuf``;
the field numbers live only in the Go struct tags of ``k8s.io/api``
(``json:"generateName,omitempty" protobuf:"bytes,2,opt,name=generateName"``). A Go binary keeps
every struct's fields for reflection: an array of ``{name *byte, typ *Type, offset uintptr}``
whose name record holds the field name and its tag. So the installed kubectl — the client whose
requests are being decoded — is the authority, and no copy of the numbers is kept here.

Layout read (Go ≥ 1.17, amd64 ELF): a name record is ``flags, varint len, name, varint len, tag``;
a struct type is a 48-byte ``abi.Type``, the package path, then the fields slice (at +56).
"""

from __future__ import annotations

import array
import re
import struct
from dataclasses import dataclass
from pathlib import Path

_NAME = re.compile(
    # flags byte precedes: name length, exported name, tag length (1-2 byte varint), tag with a json key
    rb"([\x01-\x7f])([A-Z][A-Za-z0-9_]*)([\x01-\x7f]|[\x80-\xff][\x01-\x7f])"
    rb"(json:\"[^\"]*\"(?: [A-Za-z_]+:\"[^\"]*\")*)"
)
_FIELDS_AT = 56  # offset of the fields slice in abi.StructType
_KIND_AT = 23  # offset of Kind_ in abi.Type
_KIND_PTR = 22


@dataclass(frozen=True, slots=True)
class GoField:
    json: str  # "" for an embedded struct whose fields JSON flattens into the parent
    number: int
    wire: str  # bytes | varint | fixed32 | fixed64
    type_addr: int
    # a zero value of a plain (non-pointer) omitempty field is what JSON would leave out
    omitempty: bool = False
    pointer: bool = False


@dataclass(frozen=True, slots=True)
class GoStruct:
    addr: int
    fields: tuple[GoField, ...]


class _Image:
    def __init__(self, data: bytes) -> None:
        if data[:4] != b"\x7fELF" or data[4] != 2:
            raise ValueError("not a 64-bit ELF binary")
        phoff = struct.unpack_from("<Q", data, 0x20)[0]
        size, num = struct.unpack_from("<HH", data, 0x36)
        self.data = data
        self.segments = []
        for i in range(num):
            p_type, _, off, vaddr, _, filesz, _, _ = struct.unpack_from("<IIQQQQQQ", data, phoff + i * size)
            if p_type == 1:  # PT_LOAD
                self.segments.append((off, vaddr, filesz))

    def vaddr(self, off: int) -> int | None:
        for o, v, s in self.segments:
            if o <= off < o + s:
                return v + off - o
        return None

    def offset(self, va: int) -> int | None:
        for o, v, s in self.segments:
            if v <= va < v + s:
                return o + va - v
        return None

    def kind(self, va: int) -> int:
        off = self.offset(va + _KIND_AT)
        return -1 if off is None else self.data[off] & 0x1F

    def word(self, va: int) -> int | None:
        off = self.offset(va)
        return None if off is None else int(struct.unpack_from("<Q", self.data, off)[0])


def _tag_fields(tag: str) -> tuple[str, int, str, bool] | None:
    j = re.search(r'json:"([^",]*)([^"]*)"', tag)
    p = re.search(r'protobuf:"([a-z0-9]+),(\d+),', tag)
    if j is None or p is None:
        return None
    return j.group(1), int(p.group(2)), p.group(1), "omitempty" in j.group(2)


def structs(binary: Path) -> dict[int, GoStruct]:
    """Every struct with protobuf tags in the binary, by the address of its fields array."""
    img = _Image(binary.read_bytes())
    data = img.data
    names: dict[int, tuple[str, int, str, bool]] = {}
    for m in _NAME.finditer(data):
        if m.group(1)[0] != len(m.group(2)):
            continue
        tb = m.group(3)
        tag_len = tb[0] if len(tb) == 1 else (tb[0] & 0x7F) | (tb[1] << 7)
        tag = m.group(4)
        if tag_len != len(tag) or b'protobuf:"' not in tag:
            continue
        parsed = _tag_fields(tag.decode())
        va = img.vaddr(m.start() - 1)  # the record starts at its flags byte
        if parsed is not None and va is not None:
            names[va] = parsed
    words = array.array("Q")
    words.frombytes(data[: len(data) // 8 * 8])
    hits = [i for i, w in enumerate(words) if w in names]
    hit_set = set(hits)
    out: dict[int, GoStruct] = {}
    for h in hits:
        if h - 3 in hit_set:
            continue  # not the first field of its array
        fields = []
        i = h
        while i in hit_set:
            j, num, wire, omit = names[words[i]]
            typ = int(words[i + 1])
            fields.append(GoField(j, num, wire, typ, omit, img.kind(typ) == _KIND_PTR))
            i += 3
        va = img.vaddr(h * 8)
        if va is not None:
            out[va] = GoStruct(va, tuple(fields))
    _resolve_embedded(img, out)
    return out


def _resolve_embedded(img: _Image, found: dict[int, GoStruct]) -> None:
    """Point each embedded field's type_addr at the fields array of the struct it embeds."""
    for addr, s in list(found.items()):
        fixed = []
        for f in s.fields:
            if f.json == "":
                target = img.word(f.type_addr + _FIELDS_AT)
                f = GoField("", f.number, f.wire, target or 0, f.omitempty, f.pointer)
            fixed.append(f)
        found[addr] = GoStruct(addr, tuple(fixed))


def json_names(s: GoStruct, all_structs: dict[int, GoStruct], depth: int = 0) -> frozenset[str]:
    """The JSON keys a struct reads, with embedded structs flattened as encoding/json does."""
    out: set[str] = set()
    for f in s.fields:
        if f.json:
            out.add(f.json)
        elif depth < 4 and f.type_addr in all_structs:
            out |= json_names(all_structs[f.type_addr], all_structs, depth + 1)
    return frozenset(out)
