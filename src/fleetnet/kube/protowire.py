"""Request bodies in ``application/vnd.kubernetes.protobuf``, decoded to the JSON object they stand for.

The envelope is kube's: the magic ``k8s\\x00`` and a ``runtime.Unknown`` (1 typeMeta {1 apiVersion,
2 kind}, 2 raw, 3 contentEncoding, 4 contentType) whose raw bytes are the object's message. The field
numbers of each message come from the Go client's binary (``gobinary``), matched to this server's
schema by field names; the schema says what each field holds. Three kube types have their own
wire shape: ``metav1.Time`` {1 seconds, 2 nanos}, ``intstr.IntOrString`` {1 type, 2 intVal,
3 strVal} and ``resource.Quantity`` {1 string}. Responses stay JSON: Go clients accept it.
"""

from __future__ import annotations

import base64
import datetime
import functools
import json
import os
import shutil
import struct
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fleetnet.kube import gobinary, schema
from fleetnet.kube.schema_types import Node

MAGIC = b"k8s\x00"
CONTENT_TYPE = "application/vnd.kubernetes.protobuf"


class ProtoError(ValueError):
    pass


def kubectl_binary() -> Path | None:
    beside = Path(sys.executable).with_name("kubectl")
    if beside.exists():
        return beside
    found = shutil.which("kubectl")
    return Path(found) if found else None


@functools.cache
def _numbers() -> dict[str, dict[int, gobinary.GoField]]:
    """Definition name -> field number -> field, for every definition a Go struct matches."""
    binary = kubectl_binary()
    if binary is None:
        raise ProtoError("no kubectl binary to read the protobuf field numbers from")
    found = _cached_structs(binary)
    by_names: dict[frozenset[str], gobinary.GoStruct] = {}
    for s in found.values():
        by_names.setdefault(gobinary.json_names(s, found), s)
    out: dict[str, dict[int, gobinary.GoField]] = {}
    for name, d in schema.document()["definitions"].items():
        props = frozenset(d.get("properties", {}))
        # the kinds embed TypeMeta, which has no protobuf tag: apiVersion and kind travel in the envelope
        match = by_names.get(props) or by_names.get(props - {"apiVersion", "kind"})
        if match is not None:
            out[name] = {f.number: f for f in match.fields}
    _numbers_embedded.update({s.addr: {f.number: f for f in s.fields} for s in found.values()})
    _structs.update(found)
    return out


def _cached_structs(binary: Path) -> dict[int, gobinary.GoStruct]:
    """The binary's structs, read once per kubectl build (reading takes seconds; every cluster's
    API server needs them) and kept beside the interpreter's environment."""
    st = binary.stat()
    cache = Path(sys.prefix) / "share" / "fleetnet" / f"goproto-{st.st_size}-{int(st.st_mtime)}.json"
    try:
        doc = json.loads(cache.read_text())
        return {int(a): gobinary.GoStruct(int(a), tuple(gobinary.GoField(*f) for f in fs)) for a, fs in doc.items()}
    except (OSError, ValueError, TypeError):
        pass
    found = gobinary.structs(binary)
    doc = {
        str(a): [[f.json, f.number, f.wire, f.type_addr, f.omitempty, f.pointer] for f in s.fields]
        for a, s in found.items()
    }
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, cache)
    except OSError:
        pass  # a read-only environment reads the binary each time
    return found


_numbers_embedded: dict[int, dict[int, gobinary.GoField]] = {}
_structs: dict[int, gobinary.GoStruct] = {}


# ------------------------------------------------------------------ the wire


def _varint(b: bytes, i: int) -> tuple[int, int]:
    shift = out = 0
    while True:
        if i >= len(b):
            raise ProtoError("truncated varint")
        c = b[i]
        i += 1
        out |= (c & 0x7F) << shift
        if not c & 0x80:
            return out, i
        shift += 7
        if shift > 63:
            raise ProtoError("varint too long")


def fields(b: bytes) -> Iterator[tuple[int, int, Any]]:
    """(number, wire type, value) of each field of a message: ints for varints and fixed, bytes else."""
    i = 0
    v: Any
    while i < len(b):
        key, i = _varint(b, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _varint(b, i)
        elif wt == 1:
            v, i = b[i : i + 8], i + 8
        elif wt == 2:
            n, i = _varint(b, i)
            if i + n > len(b):
                raise ProtoError("truncated length-delimited field")
            v, i = b[i : i + n], i + n
        elif wt == 5:
            v, i = b[i : i + 4], i + 4
        else:
            raise ProtoError(f"unsupported wire type {wt}")
        yield num, wt, v


def _signed(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


# ------------------------------------------------------------------ kube's envelope and types


def decode(body: bytes) -> dict[str, Any]:
    """The JSON object of a kube protobuf body."""
    if not body.startswith(MAGIC):
        raise ProtoError("the body does not start with kube's protobuf magic number")
    av = kind = ""
    raw = b""
    for num, _, v in fields(body[len(MAGIC) :]):
        if num == 1:
            for n2, _, v2 in fields(v):
                if n2 == 1:
                    av = v2.decode()
                elif n2 == 2:
                    kind = v2.decode()
        elif num == 2:
            raw = v
        elif num == 3 and v:
            raise ProtoError(f"unsupported content encoding {v.decode()!r}")
    name = schema.document()["roots"].get(f"{av}/{kind}")
    if name is None:
        raise ProtoError(f"no protobuf schema for {kind} in {av}")
    obj = _message(name, raw)
    obj["apiVersion"], obj["kind"] = av, kind
    return obj


def _message(defname: str, b: bytes) -> dict[str, Any]:
    numbers = _numbers().get(defname)
    if numbers is None:
        raise ProtoError(f"no protobuf field numbers for {defname}")
    return _struct(numbers, schema.definitions()[defname], b)


def _struct(numbers: dict[int, gobinary.GoField], node: Node, b: bytes) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for num, wt, v in fields(b):
        f = numbers.get(num)
        if f is None:
            continue  # a field this schema does not know: dropped, as kube drops unknown protobuf fields
        if f.json == "":
            inner = _numbers_embedded.get(f.type_addr)
            if inner is not None:
                out.update(_struct(inner, node, v))
            continue
        child = node.fields.get(f.json)
        if child is None:
            continue
        if child.type == "list":
            assert child.elem is not None
            if wt == 2 and child.elem.type in ("integer", "boolean"):  # packed
                for _, _, x in fields(_repack(v)):
                    out.setdefault(f.json, []).append(_value(child.elem, 0, x))
            else:
                out.setdefault(f.json, []).append(_value(child.elem, wt, v))
        elif child.type == "map":
            k, val = _entry(child, v)
            out.setdefault(f.json, {})[k] = val
        else:
            value = _value(child, wt, v)
            if value is None:
                continue
            if f.omitempty and not f.pointer and value in ("", 0, False) and not isinstance(value, dict):
                continue  # Go wrote a plain field's zero value; in JSON it is absent
            out[f.json] = value
    return out


def _repack(packed: bytes) -> bytes:
    """A packed run of varints as separate varint fields numbered 1, so ``fields`` can read it."""
    out = bytearray()
    i = 0
    while i < len(packed):
        start = i
        _, i = _varint(packed, i)
        out += b"\x08" + packed[start:i]
    return bytes(out)


def _entry(node: Node, b: bytes) -> tuple[str, Any]:
    key, value = "", None
    assert node.elem is not None
    for num, wt, v in fields(b):
        if num == 1:
            key = v.decode()
        elif num == 2:
            value = _value(node.elem, wt, v)
    if value is None:
        value = _empty(node.elem)
    return key, value


def _empty(node: Node) -> Any:
    return {"string": "", "integer": 0, "boolean": False, "number": 0.0}.get(node.type, {})


def _value(node: Node, wt: int, v: Any) -> Any:
    t = node.type
    if t == "string":
        if node.format == "date-time":
            return _time(v)
        if node.format == "byte":
            return base64.b64encode(v).decode()
        return v.decode()
    if t == "integer":
        return _signed(v)
    if t == "boolean":
        return bool(v)
    if t == "number":
        return struct.unpack("<d", v)[0] if wt == 1 else float(v)
    if t == "int-or-string":
        return _quantity(v) if node.format == "quantity" else _int_or_string(v)
    if t == "object" and node.ref is not None:
        return _message(node.ref, v)
    if t == "list" and node.elem is not None:  # a list inside a map (map[string][]string)
        return [_value(node.elem, w, x) for _, w, x in fields(v)]
    if t == "any":
        return _raw_extension(v)
    return v.decode() if isinstance(v, bytes) else v


def _time(b: bytes) -> str | None:
    seconds = nanos = 0
    for num, _, v in fields(b):
        if num == 1:
            seconds = _signed(v)
        elif num == 2:
            nanos = v
    if seconds == 0 and nanos == 0:
        return None  # Go's zero time, which JSON writes as null
    t = datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)
    if nanos:
        return t.strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos // 1000:06d}Z"
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _int_or_string(b: bytes) -> int | str:
    kind, iv, sv = 0, 0, ""
    for num, _, v in fields(b):
        if num == 1:
            kind = v
        elif num == 2:
            iv = _signed(v)
        elif num == 3:
            sv = v.decode()
    return sv if kind == 1 else iv


def _quantity(b: bytes) -> str:
    for num, _, v in fields(b):
        if num == 1:
            return str(v.decode())
    return "0"


def _raw_extension(b: bytes) -> Any:
    for num, _, v in fields(b):
        if num == 1:
            try:
                return json.loads(v)
            except ValueError:
                return base64.b64encode(v).decode()
    return None
