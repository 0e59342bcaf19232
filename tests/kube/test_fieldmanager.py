"""Server-side apply and managedFields over a small hand-built Deployment schema."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from fleetnet.kube import fieldmanager as fm
from fleetnet.kube.schema_types import Node

NOW, LATER = "2026-12-07T12:00:00Z", "2026-12-07T13:00:00Z"
STR, INT = Node("string"), Node("integer")
PORT = Node("object", {"containerPort": INT, "protocol": STR})
CONTAINER = Node(
    "object",
    {
        "name": STR,
        "image": STR,
        "args": Node("list", elem=STR),  # atomic: owned and replaced as one
        "ports": Node("list", elem=PORT, list_type="map", map_keys=("containerPort", "protocol")),
    },
)
META = Node(
    "object",
    {"name": STR, "labels": Node("map", elem=STR), "finalizers": Node("list", elem=STR, list_type="set")},
)
SELECTOR = Node("object", {"matchLabels": Node("map", elem=STR)}, map_type="atomic")
POD_SPEC = Node("object", {"containers": Node("list", elem=CONTAINER, list_type="map", map_keys=("name",))})
DEP = Node(
    "object",
    {
        "apiVersion": STR,
        "kind": STR,
        "metadata": META,
        "spec": Node(
            "object",
            {
                "replicas": INT,
                "selector": SELECTOR,
                "template": Node("object", {"metadata": META, "spec": POD_SPEC}),
            },
        ),
    },
)


def deployment(replicas: int | None = None, *containers: dict[str, Any], **labels: str) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if replicas is not None:
        spec["replicas"] = replicas
    if containers:
        spec["template"] = {"spec": {"containers": list(containers)}}
    md: dict[str, Any] = {"name": "d"}
    if labels:
        md["labels"] = labels
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": md, "spec": spec}


def owners(obj: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(e["manager"], e["operation"]): e for e in obj["metadata"].get("managedFields", [])}


def fields(obj: dict[str, Any], manager: str, operation: str = "Apply") -> dict[str, Any]:
    out: dict[str, Any] = owners(obj)[(manager, operation)]["fieldsV1"]
    return out


def created_by_update(obj: dict[str, Any], manager: str) -> dict[str, Any]:
    fm.update_managed_fields(None, obj, manager, "Update", None, DEP, NOW)
    return obj


def test_default_manager_is_the_user_agent_program() -> None:
    assert fm.default_manager("kubectl/v1.37.1 (linux/amd64) kubernetes/abc") == "kubectl"
    assert fm.default_manager("Go-http-client/1.1") == "Go-http-client"
    assert fm.default_manager("") == "unknown"


def test_fieldsv1_encodes_keyed_items_set_values_and_self_marks() -> None:
    obj = deployment(3, {"name": "c", "image": "x", "ports": [{"containerPort": 80, "protocol": "TCP"}]}, app="a")
    obj["metadata"]["finalizers"] = ["f"]
    enc = fm.encode(fm.fields_of(obj, DEP))
    assert enc["f:metadata"] == {"f:finalizers": {".": {}, 'v:"f"': {}}, "f:labels": {"f:app": {}}}
    item = enc["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"c"}']
    port = 'k:{"containerPort":80,"protocol":"TCP"}'  # keys sorted, compact JSON
    assert item == {
        ".": {},
        "f:image": {},
        "f:name": {},
        "f:ports": {".": {}, port: {".": {}, "f:containerPort": {}, "f:protocol": {}}},
    }
    assert enc["f:spec"]["f:replicas"] == {}
    assert fm.decode(enc) == fm.fields_of(obj, DEP)
    assert fm.path_string(("f:spec", "f:template", "f:spec", "f:containers", 'k:{"name":"c"}', "f:image")) == (
        '.spec.template.spec.containers[name="c"].image'
    )


def test_an_update_that_creates_a_map_owns_the_map_itself() -> None:
    obj = created_by_update(deployment(1, app="a"), "kubectl-create")
    entry = owners(obj)[("kubectl-create", "Update")]
    assert entry["fieldsV1"]["f:metadata"] == {"f:labels": {".": {}, "f:app": {}}}
    assert entry["apiVersion"] == "apps/v1" and entry["time"] == NOW and entry["fieldsType"] == "FieldsV1"
    assert "subresource" not in entry


def test_apply_creates_then_drops_what_it_stops_naming() -> None:
    obj = fm.apply(None, deployment(3, {"name": "c", "image": "x"}, app="a"), "alice", False, DEP, NOW)
    assert obj["spec"]["replicas"] == 3
    assert owners(obj)[("alice", "Apply")]["apiVersion"] == "apps/v1"
    again = fm.apply(obj, deployment(None, {"name": "c", "image": "x"}, app="a"), "alice", False, DEP, LATER)
    assert "replicas" not in again["spec"]
    assert "f:replicas" not in fields(again, "alice")["f:spec"]
    assert again["metadata"]["labels"] == {"app": "a"}


def test_a_field_another_manager_still_owns_survives_the_applier_dropping_it() -> None:
    obj = fm.apply(None, deployment(3), "alice", False, DEP, NOW)
    obj = fm.apply(obj, deployment(3), "bob", False, DEP, NOW)
    obj = fm.apply(obj, deployment(None, app="a"), "alice", False, DEP, LATER)
    assert obj["spec"]["replicas"] == 3  # bob still applies it


def test_two_appliers_of_the_same_value_share_it() -> None:
    obj = fm.apply(None, deployment(3), "alice", False, DEP, NOW)
    shared = fm.apply(obj, deployment(3), "bob", False, DEP, NOW)
    assert "f:replicas" in fields(shared, "alice")["f:spec"]
    assert "f:replicas" in fields(shared, "bob")["f:spec"]


def test_a_value_an_updater_set_differently_conflicts() -> None:
    live = created_by_update(deployment(1), "kubectl-client-side-apply")
    with pytest.raises(fm.ConflictError) as e:
        fm.apply(live, deployment(2), "bob", False, DEP, NOW)
    assert str(e.value) == (
        'Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using apps/v1: .spec.replicas'
    )
    (c,) = e.value.conflicts
    assert (c.manager, c.field, c.api_version) == ("kubectl-client-side-apply", ".spec.replicas", "apps/v1")


def test_several_conflicts_are_listed_per_manager() -> None:
    live = created_by_update(deployment(1, {"name": "c", "image": "x"}), "editor")
    with pytest.raises(fm.ConflictError) as e:
        fm.apply(live, deployment(2, {"name": "c", "image": "y"}), "bob", False, DEP, NOW)
    assert str(e.value) == (
        'Apply failed with 2 conflicts: conflicts with "editor" using apps/v1:\n'
        "- .spec.replicas\n"
        '- .spec.template.spec.containers[name="c"].image'
    )


def test_a_conflict_with_an_applier_names_no_version() -> None:
    live = fm.apply(None, deployment(1), "alice", False, DEP, NOW)
    with pytest.raises(
        fm.ConflictError, match=r'^Apply failed with 1 conflict: conflict with "alice": \.spec\.replicas$'
    ):
        fm.apply(live, deployment(2), "bob", False, DEP, NOW)


def test_force_takes_ownership() -> None:
    live = created_by_update(deployment(1, app="a"), "editor")
    forced = fm.apply(live, deployment(2), "bob", True, DEP, NOW)
    assert forced["spec"]["replicas"] == 2
    assert "f:replicas" in fields(forced, "bob")["f:spec"]
    assert "f:spec" not in fields(forced, "editor", "Update")  # editor kept only its label
    assert forced["metadata"]["labels"] == {"app": "a"}


def test_an_update_moves_ownership_of_what_it_changed() -> None:
    live = fm.apply(None, deployment(1, app="a"), "alice", False, DEP, NOW)
    new = copy.deepcopy(live)
    new["spec"]["replicas"] = 5
    fm.update_managed_fields(live, new, "kubectl-scale", "Update", None, DEP, LATER)
    assert fields(new, "kubectl-scale", "Update") == {"f:spec": {"f:replicas": {}}}
    assert "f:spec" not in fields(new, "alice")
    assert owners(new)[("kubectl-scale", "Update")]["time"] == LATER
    # an apply of the old value now conflicts with the updater
    with pytest.raises(fm.ConflictError, match='"kubectl-scale" using apps/v1'):
        fm.apply(new, deployment(1, app="a"), "alice", False, DEP, LATER)


def test_an_update_that_empties_a_manager_drops_its_entry() -> None:
    live = created_by_update(deployment(1), "first")
    new = copy.deepcopy(live)
    new["spec"]["replicas"] = 2
    fm.update_managed_fields(live, new, "second", "Update", None, DEP, LATER)
    assert set(owners(new)) == {("second", "Update")}


def test_an_update_that_changes_nothing_keeps_the_entries_as_they_were() -> None:
    live = created_by_update(deployment(1), "first")
    new = copy.deepcopy(live)
    fm.update_managed_fields(live, new, "second", "Update", None, DEP, LATER)
    assert new["metadata"]["managedFields"] == live["metadata"]["managedFields"]


def test_a_status_update_is_its_own_entry() -> None:
    live = created_by_update(deployment(1), "kubectl-create")
    new = copy.deepcopy(live)
    new["status"] = {"replicas": 1}
    fm.update_managed_fields(live, new, "controller", "Update", "status", DEP, LATER)
    entry = owners(new)[("controller", "Update")]
    assert entry["subresource"] == "status" and entry["fieldsV1"] == {"f:status": {"f:replicas": {}}}


def test_sent_managed_fields_an_empty_list_keeps_and_a_blank_entry_resets() -> None:
    live = created_by_update(deployment(1), "first")
    kept = copy.deepcopy(live) | {"metadata": {"name": "d", "managedFields": []}}
    fm.update_managed_fields(live, kept, "second", "Update", None, DEP, LATER)
    assert set(owners(kept)) == {("first", "Update")}
    reset = copy.deepcopy(live)
    reset["metadata"]["managedFields"] = [{}]
    reset["spec"]["replicas"] = 2
    fm.update_managed_fields(live, reset, "second", "Update", None, DEP, LATER)
    assert set(owners(reset)) == {("second", "Update")}


def test_keyed_lists_merge_by_key_and_each_applier_keeps_its_item() -> None:
    obj = fm.apply(None, deployment(None, {"name": "a", "image": "a:1"}), "alice", False, DEP, NOW)
    obj = fm.apply(obj, deployment(None, {"name": "b", "image": "b:1"}), "bob", False, DEP, NOW)
    assert [c["name"] for c in obj["spec"]["template"]["spec"]["containers"]] == ["a", "b"]
    bobs = fields(obj, "bob")["f:spec"]["f:template"]["f:spec"]["f:containers"]
    assert list(bobs) == [".", 'k:{"name":"b"}']
    obj = fm.apply(obj, deployment(None, {"name": "a", "image": "a:2"}), "alice", False, DEP, LATER)
    assert obj["spec"]["template"]["spec"]["containers"] == [
        {"name": "a", "image": "a:2"},
        {"name": "b", "image": "b:1"},
    ]
    obj = fm.apply(obj, deployment(3), "alice", False, DEP, LATER)  # alice stops naming her container
    assert obj["spec"]["template"]["spec"]["containers"] == [{"name": "b", "image": "b:1"}]


def test_sets_union_and_atomic_lists_replace_whole() -> None:
    one = deployment(None, {"name": "c", "args": ["--a", "--b"]})
    one["metadata"]["finalizers"] = ["x"]
    obj = fm.apply(None, one, "alice", False, DEP, NOW)
    two = deployment(None, {"name": "c", "args": ["--a", "--b"]})
    two["metadata"]["finalizers"] = ["y"]
    obj = fm.apply(obj, two, "bob", False, DEP, NOW)
    assert obj["metadata"]["finalizers"] == ["x", "y"]
    item = fields(obj, "bob")["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"c"}']
    assert item["f:args"] == {}  # the atomic list is one field
    other = deployment(None, {"name": "c", "args": ["--z"]})
    with pytest.raises(fm.ConflictError, match=r'containers\[name="c"\]\.args'):
        fm.apply(obj, other, "carol", False, DEP, NOW)
    assert fm.apply(obj, other, "carol", True, DEP, NOW)["spec"]["template"]["spec"]["containers"][0]["args"] == ["--z"]


def test_an_atomic_map_is_replaced_and_owned_as_one() -> None:
    first = deployment(1)
    first["spec"]["selector"] = {"matchLabels": {"a": "1", "b": "2"}}
    obj = fm.apply(None, first, "alice", False, DEP, NOW)
    assert fields(obj, "alice")["f:spec"]["f:selector"] == {}
    second = deployment(1)
    second["spec"]["selector"] = {"matchLabels": {"c": "3"}}
    assert fm.apply(obj, second, "alice", False, DEP, NOW)["spec"]["selector"] == {"matchLabels": {"c": "3"}}
