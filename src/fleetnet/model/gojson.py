"""Go's ``encoding/json``, as far as Cilium's kvstore values need it: encode with Go field names, struct
order, sorted map keys and Go's HTML escaping; decode as ``json.Unmarshal`` does (names matched
case-insensitively, unknown fields ignored, null leaving the zero value, a wrong JSON type refused).
Kept apart from the value types in ``cilium.py`` that use it."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
from collections.abc import Iterable, Mapping
from typing import Any, NoReturn

from fleetnet.errors import InvalidInput

# ---------------------------------------------------------------------------------------------
# Go's encoding/json, both ways


def go_json(value: Any) -> bytes:
    """``json.Marshal``: compact, UTF-8, with '<', '>', '&', U+2028 and U+2029 escaped like Go."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for raw, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(raw, escaped)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").encode()


class _Obj(list[tuple[str, Any]]):
    """A JSON object as its (key, value) pairs in document order, so that decoding can follow Go."""


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"invalid JSON literal {name}")


class _Decoder:
    """``json.Unmarshal`` into Go types; every failure names the value, its key and the field."""

    def __init__(self, what: str, key: str) -> None:
        self.what = what
        self.key = key

    def fail(self, path: str, message: str) -> NoReturn:
        subject = f"{path}: " if path else ""
        raise InvalidInput(f"the {self.what} at {self.key} is invalid: {subject}{message}.")

    def load(self, data: bytes | str) -> Any:
        text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
        try:
            return json.loads(text, object_pairs_hook=_Obj, parse_constant=_reject_constant)
        except ValueError as e:
            self.fail("", f"it is not JSON ({e})")

    def struct(self, value: Any, path: str, names: Iterable[str]) -> dict[str, Any]:
        """Fields of a struct: exact name first, else case-insensitive; the last occurrence wins."""
        if value is None:
            return {}
        if not isinstance(value, _Obj):
            self.fail(path, f"expected an object, found {_json_kind(value)}")
        exact = set(names)
        folded = {n.lower(): n for n in exact}
        out: dict[str, Any] = {}
        for k, v in value:
            name = k if k in exact else folded.get(k.lower())
            if name is not None:
                out[name] = v
        return out

    def string(self, value: Any, path: str) -> str:
        if value is None:
            return ""
        if not isinstance(value, str):
            self.fail(path, f"expected a string, found {_json_kind(value)}")
        return value

    def boolean(self, value: Any, path: str) -> bool:
        if value is None:
            return False
        if not isinstance(value, bool):
            self.fail(path, f"expected true or false, found {_json_kind(value)}")
        return value

    def uint(self, value: Any, path: str, bits: int) -> int:
        if value is None:
            return 0
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**bits:
            self.fail(path, f"expected an integer from 0 to {2**bits - 1}, found {value!r}")
        return value

    def array(self, value: Any, path: str) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list) or isinstance(value, _Obj):
            self.fail(path, f"expected an array, found {_json_kind(value)}")
        return value

    def mapping(self, value: Any, path: str) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, _Obj):
            self.fail(path, f"expected an object, found {_json_kind(value)}")
        return dict(value)

    def string_map(self, value: Any, path: str) -> dict[str, str]:
        return {k: self.string(v, f"{path}[{k!r}]") for k, v in self.mapping(value, path).items()}

    def ip(self, value: Any, path: str) -> str | None:
        """A ``net.IP`` (text form): "" and null are the nil IP; anything else must parse."""
        text = self.string(value, path)
        if not text:
            return None
        addr = _parse_ip(text)
        if addr is None:
            self.fail(path, f"invalid IP address {text!r}")
        return go_ip_string(addr)

    def mask(self, value: Any, path: str) -> bytes | None:
        """A ``net.IPMask``: a []byte, i.e. base64 in JSON."""
        text = self.string(value, path) if value is not None else None
        if text is None:
            return None
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            self.fail(path, f"{text!r} is not base64")


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, _Obj):
        return "an object"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return "a string"
    return "an array"


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _parse_ip(text: str) -> IPAddress | None:
    """Go's ``net.ParseIP``/``netip.ParseAddr``: no zones, no leading zeros in IPv4."""
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.scope_id is not None:
        return None
    return addr


def go_ip_string(addr: IPAddress | str) -> str:
    """``net.IP.String()``: an IPv4-mapped IPv6 address prints as IPv4; IPv6 in RFC 5952 form."""
    if isinstance(addr, str):
        parsed = _parse_ip(addr)
        if parsed is None:
            raise InvalidInput(f"{addr!r} is not an IP address.")
        addr = parsed
    if isinstance(addr, ipaddress.IPv6Address):
        mapped = addr.ipv4_mapped
        return str(mapped) if mapped is not None else addr.compressed
    return str(addr)


def _mask_prefix(mask: bytes, version: int) -> int | None:
    """The prefix length of a canonical mask of the address family, else None."""
    if len(mask) != (4 if version == 4 else 16):
        return None
    bits = int.from_bytes(mask, "big")
    width = len(mask) * 8
    ones = bin(bits).count("1")
    return ones if bits == ((1 << ones) - 1) << (width - ones) else None


def _mask_bytes(prefix: int, version: int) -> bytes:
    width = 32 if version == 4 else 128
    return (((1 << prefix) - 1) << (width - prefix)).to_bytes(width // 8, "big")


def _sorted_map(m: Mapping[str, Any], conv: Any = None) -> dict[str, Any]:
    # Go writes map keys in sorted order
    return {k: (conv(m[k]) if conv else m[k]) for k in sorted(m)}
