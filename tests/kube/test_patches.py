"""The three patch documents: RFC 6902, RFC 7386 and strategic merge patch with kube's tags."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as hs

from fleetnet.kube import patch, schema

POD = schema.root("v1", "Pod")


def test_json_patch_operations() -> None:
    doc = {"a": {"b": [1, 2]}, "c": "x"}
    out = patch.json_patch(
        doc,
        [
            {"op": "add", "path": "/a/b/-", "value": 3},
            {"op": "add", "path": "/a/b/0", "value": 0},
            {"op": "replace", "path": "/c", "value": "y"},
            {"op": "copy", "from": "/c", "path": "/d"},
            {"op": "move", "from": "/d", "path": "/e"},
            {"op": "remove", "path": "/a/b/1"},
            {"op": "test", "path": "/e", "value": "y"},
            {"op": "add", "path": "/k~1v", "value": 1},
        ],
    )
    assert out == {"a": {"b": [0, 2, 3]}, "c": "y", "e": "y", "k/v": 1}


@pytest.mark.parametrize(
    "ops, needle",
    [
        ([{"op": "remove", "path": "/nope"}], "nope"),
        ([{"op": "replace", "path": "/x/y", "value": 1}], "missing"),
        ([{"op": "test", "path": "/a", "value": 2}], "test operation failed"),
        ([{"op": "jump", "path": "/a"}], "unexpected kind of operation"),
        ([{"op": "add", "path": "/l/9", "value": 1}], "out of range"),
    ],
)
def test_json_patch_errors(ops: list[Any], needle: str) -> None:
    with pytest.raises(patch.PatchError, match=needle):
        patch.json_patch({"a": 1, "l": []}, ops)


def test_merge_patch_rfc7386_examples() -> None:
    assert patch.merge_patch({"a": "b"}, {"a": "c"}) == {"a": "c"}
    assert patch.merge_patch({"a": "b"}, {"b": "c"}) == {"a": "b", "b": "c"}
    assert patch.merge_patch({"a": "b"}, {"a": None}) == {}
    assert patch.merge_patch({"a": [{"b": "c"}]}, {"a": [1]}) == {"a": [1]}
    assert patch.merge_patch({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}) == {"a": {"b": "d"}}
    assert patch.merge_patch(["a", "b"], ["c", "d"]) == ["c", "d"]
    assert patch.merge_patch({"e": None}, {"a": 1}) == {"e": None, "a": 1}


def pod(containers: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "p", "labels": {"a": "1", "b": "2"}}, "spec": {"containers": containers, **spec}}


def test_strategic_merge_by_key_and_null_removal() -> None:
    live = pod([{"name": "a", "image": "x", "env": [{"name": "E", "value": "1"}]}, {"name": "b", "image": "y"}])
    p = {
        "metadata": {"labels": {"b": None, "c": "3"}},
        "spec": {"containers": [{"name": "a", "image": "x2", "env": [{"name": "F", "value": "2"}]}]},
    }
    out = patch.strategic_merge_patch(live, p, POD)
    assert out["metadata"]["labels"] == {"a": "1", "c": "3"}
    a, b = out["spec"]["containers"]
    assert a == {"name": "a", "image": "x2", "env": [{"name": "E", "value": "1"}, {"name": "F", "value": "2"}]}
    assert b == {"name": "b", "image": "y"}


def test_strategic_directives() -> None:
    live = pod([{"name": "a"}, {"name": "b"}, {"name": "c"}], tolerations=[{"key": "t"}])
    # $patch: delete of one item, $setElementOrder, and an atomic list replaced whole
    p = {
        "spec": {
            "$setElementOrder/containers": [{"name": "c"}, {"name": "a"}],
            "containers": [{"name": "b", "$patch": "delete"}],
            "tolerations": [{"key": "u"}],
        }
    }
    out = patch.strategic_merge_patch(live, p, POD)
    assert [c["name"] for c in out["spec"]["containers"]] == ["c", "a"]
    assert out["spec"]["tolerations"] == [{"key": "u"}]
    # $patch: replace on a list, and on a map
    out = patch.strategic_merge_patch(live, {"spec": {"containers": [{"name": "z"}, {"$patch": "replace"}]}}, POD)
    assert out["spec"]["containers"] == [{"name": "z"}]
    out = patch.strategic_merge_patch(live, {"metadata": {"labels": {"$patch": "replace", "only": "me"}}}, POD)
    assert out["metadata"]["labels"] == {"only": "me"}


def test_primitive_sets_and_retain_keys() -> None:
    live = {"metadata": {"finalizers": ["a", "b"]}}
    out = patch.strategic_merge_patch(live, {"metadata": {"finalizers": ["c"]}}, POD)
    assert out["metadata"]["finalizers"] == ["a", "b", "c"]
    out = patch.strategic_merge_patch(live, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}, POD)
    assert out["metadata"]["finalizers"] == ["b"]
    dep = schema.root("apps/v1", "Deployment")
    live = {"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}}
    p = {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}
    assert patch.strategic_merge_patch(live, p, dep) == {"spec": {"strategy": {"type": "Recreate"}}}


def test_a_keyed_item_without_its_key_is_refused() -> None:
    with pytest.raises(patch.PatchError, match="merge key: name"):
        patch.strategic_merge_patch(pod([]), {"spec": {"containers": [{"image": "x"}]}}, POD)


def test_no_schema_means_json_semantics() -> None:
    live = {"spec": {"l": [1, 2], "m": {"a": 1}}}
    out = patch.strategic_merge_patch(live, {"spec": {"l": [3], "m": {"b": 2}}}, None)
    assert out == {"spec": {"l": [3], "m": {"a": 1, "b": 2}}}


JSON = hs.recursive(
    hs.none() | hs.booleans() | hs.integers() | hs.text(max_size=5),
    lambda kids: hs.lists(kids, max_size=3) | hs.dictionaries(hs.text(max_size=5), kids, max_size=3),
    max_leaves=10,
)


def _no_nulls(v: Any) -> bool:
    if v is None:
        return False
    if isinstance(v, dict):
        return all(_no_nulls(x) for x in v.values())
    if isinstance(v, list):
        return all(_no_nulls(x) for x in v)
    return True


@given(hs.dictionaries(hs.text(max_size=5), JSON, max_size=4))
def test_patches_with_nothing_to_change_change_nothing(doc: dict[str, Any]) -> None:
    assert patch.json_patch(doc, []) == doc
    if _no_nulls(doc):
        assert patch.merge_patch(doc, doc) == doc
