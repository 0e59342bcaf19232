"""The schema of the built-in kinds: complete against the official client's models, with kube's tags."""

from __future__ import annotations

import json

import pytest

from fleetnet.kube import openapi, schema, schemagen, validation
from fleetnet.kube.resources import RESOURCES


def test_the_generated_schema_is_current() -> None:
    assert schemagen.OUT.read_text() == schemagen.render(), "run: python -m fleetnet.kube.schemagen"


@pytest.mark.parametrize("r", [r for r in RESOURCES if not r.custom], ids=lambda r: r.kind)
def test_every_stored_kind_has_every_field_of_the_client_model(r: object) -> None:
    import kubernetes.client.models as models

    cls = getattr(models, schemagen.ROOTS[f"{r.api_version}/{r.kind}"])  # type: ignore[attr-defined]
    node = schema.root(r.api_version, r.kind)  # type: ignore[attr-defined]
    assert node is not None
    assert set(node.fields) == set(cls.attribute_map.values())
    # and one level down: spec and status carry every field too
    for sub in ("spec", "status"):
        if sub in cls.openapi_types:
            inner = getattr(models, cls.openapi_types[sub])
            assert set(node.fields[sub].fields) == set(inner.attribute_map.values())


def test_list_tags_follow_kube() -> None:
    pod = schema.root("v1", "Pod")
    assert pod is not None
    containers = pod.fields["spec"].fields["containers"]
    assert (containers.patch_strategy, containers.patch_merge_key) == ("merge", "name")
    assert (containers.list_type, containers.map_keys) == ("map", ("name",))
    ports = containers.elem.fields["ports"]  # type: ignore[union-attr]
    assert ports.map_keys == ("containerPort", "protocol")
    assert pod.fields["spec"].fields["tolerations"].list_type == "atomic"
    assert pod.fields["metadata"].fields["finalizers"].list_type == "set"
    dep = schema.root("apps/v1", "Deployment")
    assert dep is not None and dep.fields["spec"].fields["strategy"].patch_strategy == "retainKeys"


def test_unknown_kinds_have_no_schema_and_cilium_kinds_keep_their_spec() -> None:
    assert schema.root("v1", "Gadget") is None
    cnp = schema.root("cilium.io/v2", "CiliumNetworkPolicy")
    assert cnp is not None and cnp.fields["spec"].preserve_unknown
    obj = {"apiVersion": "cilium.io/v2", "kind": "CiliumNetworkPolicy", "spec": {"anything": {"goes": 1}}}
    assert validation.unknown_fields("cilium.io/v2", "CiliumNetworkPolicy", obj) == []
    obj["metadata"] = {"nam": "x"}
    assert validation.unknown_fields("cilium.io/v2", "CiliumNetworkPolicy", obj) == ["metadata.nam"]


def test_unknown_fields_are_named_by_path() -> None:
    d = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "x", "labels": {"any": "label"}},
        "spec": {"foo": 1, "template": {"spec": {"containers": [{"name": "a"}, {"name": "b", "bogus": 1}]}}},
    }
    assert validation.unknown_fields("apps/v1", "Deployment", d) == [
        "spec.foo",
        "spec.template.spec.containers[1].bogus",
    ]


def test_wrong_types_read_as_go_decode_errors() -> None:
    d = {
        "spec": {
            "replicas": "3",
            "template": {"spec": {"containers": [{"name": "a", "ports": [{"containerPort": 80}]}]}},
        }
    }
    assert validation.type_errors("apps/v1", "Deployment", d) == [
        "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32"
    ]
    ok = {"spec": {"replicas": 3, "selector": None, "template": {"spec": {"terminationGracePeriodSeconds": 5}}}}
    assert validation.type_errors("apps/v1", "Deployment", ok) == []
    assert validation.type_errors("v1", "Pod", {"spec": {"containers": {"name": "a"}}}) == [
        "json: cannot unmarshal object into Go struct field PodSpec.spec.containers of type []v1.Container"
    ]
    # a port is an int or a string; a boolean is neither
    probe = {"spec": {"containers": [{"name": "a", "readinessProbe": {"httpGet": {"port": True}}}]}}
    assert len(validation.type_errors("v1", "Pod", probe)) == 1


def test_duplicate_fields_are_found_with_their_path() -> None:
    obj, dups = validation.decode_json_strict(b'{"metadata":{"name":"a","name":"b"},"spec":[{"x":1,"x":2}]}')
    assert obj == {"metadata": {"name": "b"}, "spec": [{"x": 2}]}
    assert dups == ["metadata.name", "spec[0].x"]


def test_openapi_v3_names_the_field_validation_parameter_for_every_kind() -> None:
    index = json.loads(openapi.openapi_v3_index_bytes())
    for r in RESOURCES:
        gv = f"apis/{r.group}/{r.version}" if r.group else "api/v1"
        assert gv in index["paths"]
        doc = json.loads(openapi.openapi_v3_bytes(gv) or b"{}")
        patches = [
            p
            for p in doc["paths"].values()
            if p.get("patch", {}).get("x-kubernetes-group-version-kind", {}).get("kind") == r.kind
        ]
        assert patches, r.kind
        assert any(x["name"] == "fieldValidation" for x in patches[0]["patch"]["parameters"])
        kinds = [
            s
            for s in doc["components"]["schemas"].values()
            if {"group": r.group, "kind": r.kind, "version": r.version} in s.get("x-kubernetes-group-version-kind", [])
        ]
        assert len(kinds) == 1, r.kind
    assert openapi.openapi_v3_bytes("apis/nothing/v9") is None


def test_openapi_v2_references_resolve() -> None:
    doc = json.loads(openapi.openapi_v2_bytes())
    refs: list[str] = []

    def walk(v: object) -> None:
        if isinstance(v, dict):
            if "$ref" in v:
                refs.append(v["$ref"])
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    walk(doc)
    assert refs
    missing = {r for r in refs if r.removeprefix("#/definitions/") not in doc["definitions"]}
    assert not missing
