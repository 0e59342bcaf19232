"""RFC 6902, RFC 7386 and Kubernetes' strategic merge patch over small hand-built schemas."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as hs

from fleetnet.kube.patch import PatchError, json_patch, merge_patch, strategic_merge_patch
from fleetnet.kube.schema_types import Node


def scalar(t: Any = "string") -> Node:
    return Node(t)


def merged_list(elem: Node, key: str | None = None, strategy: str = "merge") -> Node:
    return Node("list", elem=elem, patch_strategy=strategy, patch_merge_key=key)


ENV = Node("object", {"name": scalar(), "value": scalar()})
PORT = Node("object", {"containerPort": scalar("integer"), "protocol": scalar()})
CONTAINER = Node(
    "object",
    {
        "name": scalar(),
        "image": scalar(),
        "env": merged_list(ENV, "name"),
        "ports": merged_list(PORT, "containerPort"),
        "args": Node("list", elem=scalar()),  # no strategy: replaced whole
    },
)
VOLUME = Node("object", {"name": scalar(), "hostPath": Node("object", {"path": scalar()}), "emptyDir": Node("object")})
POD_SPEC = Node(
    "object",
    {"containers": merged_list(CONTAINER, "name"), "volumes": merged_list(VOLUME, "name", "merge,retainKeys")},
)
META = Node(
    "object",
    {
        "name": scalar(),
        "labels": Node("map", elem=scalar()),
        "annotations": Node("map", elem=scalar()),
        "finalizers": merged_list(scalar()),
    },
)
ROLLING = Node("object", {"maxSurge": scalar("int-or-string")})
STRATEGY = Node("object", {"type": scalar(), "rollingUpdate": ROLLING}, patch_strategy="retainKeys")
DEPLOYMENT = Node(
    "object",
    {
        "metadata": META,
        "spec": Node(
            "object",
            {
                "replicas": scalar("integer"),
                "strategy": STRATEGY,
                "template": Node("object", {"metadata": META, "spec": POD_SPEC}),
            },
        ),
    },
)


def deployment(*containers: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {"name": "d", "labels": {"app": "a", "tier": "web"}, "finalizers": ["x"]},
        "spec": {
            "replicas": 1,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
            "template": {"spec": {"containers": list(containers)}},
        },
    }


def containers_of(doc: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = doc["spec"]["template"]["spec"]["containers"]
    return out


def smp(doc: dict[str, Any], p: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = strategic_merge_patch(copy.deepcopy(doc), p, DEPLOYMENT)
    assert not _directives(out), "directives never reach the object"
    return out


def _directives(v: Any) -> list[str]:
    if isinstance(v, dict):
        return [k for k in v if k.startswith("$")] + [d for x in v.values() for d in _directives(x)]
    if isinstance(v, list):
        return [d for x in v for d in _directives(x)]
    return []


def template(spec: dict[str, Any]) -> dict[str, Any]:
    return {"spec": {"template": {"spec": spec}}}


# ------------------------------------------------------------------ RFC 6902 appendix A


@pytest.mark.parametrize(
    "doc, ops, want",
    [
        ({"foo": "bar"}, [{"op": "add", "path": "/baz", "value": "qux"}], {"baz": "qux", "foo": "bar"}),  # A.1
        ({"foo": ["bar", "baz"]}, [{"op": "add", "path": "/foo/1", "value": "qux"}], {"foo": ["bar", "qux", "baz"]}),
        ({"baz": "qux", "foo": "bar"}, [{"op": "remove", "path": "/baz"}], {"foo": "bar"}),  # A.3
        ({"foo": ["bar", "qux", "baz"]}, [{"op": "remove", "path": "/foo/1"}], {"foo": ["bar", "baz"]}),  # A.4
        (
            {"baz": "qux", "foo": "bar"},
            [{"op": "replace", "path": "/baz", "value": "boo"}],
            {"baz": "boo", "foo": "bar"},
        ),
        (  # A.6
            {"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
            [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
            {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}},
        ),
        (  # A.7
            {"foo": ["all", "grass", "cows", "eats"]},
            [{"op": "move", "from": "/foo/1", "path": "/foo/3"}],
            {"foo": ["all", "cows", "eats", "grass"]},
        ),
        (  # A.8
            {"baz": "qux", "foo": ["a", 2, "c"]},
            [{"op": "test", "path": "/baz", "value": "qux"}, {"op": "test", "path": "/foo/1", "value": 2}],
            {"baz": "qux", "foo": ["a", 2, "c"]},
        ),
        (
            {"foo": "bar"},
            [{"op": "add", "path": "/child", "value": {"grandchild": {}}}],
            {"foo": "bar", "child": {"grandchild": {}}},
        ),
        ({"foo": "bar"}, [{"op": "add", "path": "/baz", "value": "qux", "xyz": 123}], {"foo": "bar", "baz": "qux"}),
        ({"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": 10}], {"/": 9, "~1": 10}),  # A.14
        (
            {"foo": ["bar"]},
            [{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}],
            {"foo": ["bar", ["abc", "def"]]},
        ),
        ({"a": {"b": 1}}, [{"op": "copy", "from": "/a", "path": "/c"}], {"a": {"b": 1}, "c": {"b": 1}}),
    ],
)
def test_json_patch_rfc6902_examples(doc: Any, ops: list[Any], want: Any) -> None:
    assert json_patch(doc, ops) == want


@pytest.mark.parametrize(
    "doc, ops, message",
    [
        ({"foo": "bar"}, [{"op": "test", "path": "/baz", "value": "bar"}], "missing value"),  # A.9
        ({"foo": "bar"}, [{"op": "add", "path": "/baz/bat", "value": "qux"}], 'doc is missing path: "/baz/bat"'),
        ({"/": 9, "~1": 10}, [{"op": "test", "path": "/~01", "value": "10"}], "testing value /~01 failed"),  # A.15
        ({"a": 1}, [{"op": "test", "path": "/a", "value": True}], "test operation failed"),  # true is not 1
        ({"a": [1]}, [{"op": "remove", "path": "/a/5"}], "index out of range"),
        ({"a": 1}, [{"op": "fly", "path": "/a"}], "unexpected kind of operation"),
    ],
)
def test_json_patch_errors(doc: Any, ops: list[Any], message: str) -> None:
    with pytest.raises(PatchError, match=message.replace("$", r"\$")):
        json_patch(doc, ops)


def test_json_patch_does_not_alias_its_values() -> None:
    value = {"x": [1]}
    out = json_patch({}, [{"op": "add", "path": "/a", "value": value}])
    out["a"]["x"].append(2)
    assert value == {"x": [1]}


# ------------------------------------------------------------------ RFC 7386 appendix A


@pytest.mark.parametrize(
    "doc, p, want",
    [
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        (["a", "b"], ["c", "d"], ["c", "d"]),
        ({"a": "b"}, ["c"], ["c"]),
        ({"a": "foo"}, None, None),
        ({"a": "foo"}, "bar", "bar"),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ],
)
def test_merge_patch_rfc7386_examples(doc: Any, p: Any, want: Any) -> None:
    assert merge_patch(doc, p) == want


# ------------------------------------------------------------------ strategic merge patch


def test_containers_merge_by_name() -> None:
    doc = deployment({"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"})
    out = smp(doc, template({"containers": [{"name": "b", "image": "b:2"}, {"name": "c", "image": "c:1"}]}))
    assert containers_of(out) == [
        {"name": "a", "image": "a:1"},
        {"name": "b", "image": "b:2"},
        {"name": "c", "image": "c:1"},
    ]


def test_env_by_name_and_ports_by_container_port_inside_a_container() -> None:
    doc = deployment(
        {
            "name": "a",
            "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}],
            "ports": [{"containerPort": 80, "protocol": "TCP"}],
            "args": ["--old", "--keep"],
        }
    )
    p = template(
        {
            "containers": [
                {
                    "name": "a",
                    "env": [{"name": "Y", "value": "3"}, {"name": "Z", "value": "4"}],
                    "ports": [{"containerPort": 80, "protocol": "UDP"}, {"containerPort": 443}],
                    "args": ["--new"],
                }
            ]
        }
    )
    (c,) = containers_of(smp(doc, p))
    assert c["env"] == [{"name": "X", "value": "1"}, {"name": "Y", "value": "3"}, {"name": "Z", "value": "4"}]
    assert c["ports"] == [{"containerPort": 80, "protocol": "UDP"}, {"containerPort": 443}]
    assert c["args"] == ["--new"]  # no patch strategy: the list is replaced


def test_null_removes_labels_and_annotations() -> None:
    doc = deployment()
    doc["metadata"]["annotations"] = {"note": "x"}
    out = smp(doc, {"metadata": {"labels": {"tier": None, "new": "1"}, "annotations": None}})
    assert out["metadata"]["labels"] == {"app": "a", "new": "1"}
    assert "annotations" not in out["metadata"]


def test_delete_directive_on_a_list_item_and_on_a_map() -> None:
    doc = deployment({"name": "a"}, {"name": "b"})
    out = smp(doc, template({"containers": [{"name": "a", "$patch": "delete"}]}))
    assert containers_of(out) == [{"name": "b"}]
    out = smp(doc, {"spec": {"strategy": {"$patch": "delete"}}})
    assert "strategy" not in out["spec"]


def test_replace_directive_in_a_list_and_at_a_map() -> None:
    doc = deployment({"name": "a", "image": "a:1"}, {"name": "b"})
    out = smp(doc, template({"containers": [{"name": "z"}, {"$patch": "replace"}]}))
    assert containers_of(out) == [{"name": "z"}]
    out = smp(doc, {"metadata": {"labels": {"$patch": "replace", "only": "me"}}})
    assert out["metadata"]["labels"] == {"only": "me"}


def test_set_element_order_orders_the_merged_list() -> None:
    doc = deployment({"name": "a"}, {"name": "b"})
    p = template(
        {
            "$setElementOrder/containers": [{"name": "c"}, {"name": "b"}, {"name": "a"}],
            "containers": [{"name": "c"}],
        }
    )
    assert [c["name"] for c in containers_of(smp(doc, p))] == ["c", "b", "a"]
    # an order alone reorders the list the patch does not otherwise touch
    only_order = template({"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}]})
    assert [c["name"] for c in containers_of(smp(doc, only_order))] == ["b", "a"]


def test_retain_keys_drops_what_it_does_not_list() -> None:
    # what kubectl apply sends when a Deployment switches to Recreate
    p = {"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": None, "type": "Recreate"}}}
    assert smp(deployment(), p)["spec"]["strategy"] == {"type": "Recreate"}
    doc = deployment()
    doc["spec"]["template"]["spec"]["volumes"] = [{"name": "v", "emptyDir": {}}]
    vols = template({"volumes": [{"name": "v", "$retainKeys": ["hostPath", "name"], "hostPath": {"path": "/x"}}]})
    assert smp(doc, vols)["spec"]["template"]["spec"]["volumes"] == [{"name": "v", "hostPath": {"path": "/x"}}]


def test_primitive_lists_merge_as_sets_and_delete_from_primitive_list() -> None:
    doc = deployment()
    doc["metadata"]["finalizers"] = ["x", "y"]
    out = smp(doc, {"metadata": {"finalizers": ["z", "x"]}})
    assert out["metadata"]["finalizers"] == ["x", "y", "z"]
    out = smp(doc, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["x"]}})
    assert out["metadata"]["finalizers"] == ["y"]


def test_a_keyed_item_without_its_key_is_refused() -> None:
    with pytest.raises(PatchError, match="does not contain declared merge key: name"):
        smp(deployment({"name": "a"}), template({"containers": [{"image": "x"}]}))


def test_without_a_schema_lists_are_replaced_and_maps_merged() -> None:
    doc = {"spec": {"items": [{"name": "a"}], "m": {"x": 1, "y": 2}}}
    out = strategic_merge_patch(copy.deepcopy(doc), {"spec": {"items": [{"name": "b"}], "m": {"y": None}}}, None)
    assert out == {"spec": {"items": [{"name": "b"}], "m": {"x": 1}}}


# ------------------------------------------------------------------ properties

JSON_NO_NULL = hs.recursive(
    hs.booleans() | hs.integers() | hs.floats(allow_nan=False, allow_infinity=False) | hs.text(max_size=5),
    lambda inner: hs.lists(inner, max_size=4) | hs.dictionaries(hs.text(max_size=5), inner, max_size=4),
    max_leaves=20,
)
JSON = hs.recursive(
    hs.none() | hs.booleans() | hs.integers() | hs.text(max_size=5),
    lambda inner: hs.lists(inner, max_size=4) | hs.dictionaries(hs.text(max_size=5), inner, max_size=4),
    max_leaves=20,
)


@given(hs.dictionaries(hs.text(max_size=5), JSON_NO_NULL, max_size=5))
def test_a_merge_patch_of_itself_changes_nothing(doc: dict[str, Any]) -> None:
    assert merge_patch(copy.deepcopy(doc), copy.deepcopy(doc)) == doc


@given(JSON)
def test_an_empty_json_patch_is_identity(doc: Any) -> None:
    assert json_patch(copy.deepcopy(doc), []) == doc
