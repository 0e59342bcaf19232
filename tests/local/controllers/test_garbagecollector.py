"""The garbage collector on plain objects: dependents of a gone owner are deleted, a dependent with
another live owner only loses the dead reference, and a reference whose uid does not match the
live object of that name counts as gone."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from fleetnet.kube.client import KubeClient
from fleetnet.local.controllers import ControllerManager
from tests.local.controllers.support import edit, res
from tests.support.wait import wait_for

CM = res("ConfigMap")


@pytest.fixture(scope="module", autouse=True)
def running(manager: ControllerManager) -> Iterator[None]:
    yield


def cm(ns: str, name: str, *owners: dict[str, Any]) -> dict[str, Any]:
    md: dict[str, Any] = {"name": name, "namespace": ns}
    if owners:
        md["ownerReferences"] = [
            {"apiVersion": "v1", "kind": "ConfigMap", "name": o["metadata"]["name"], "uid": o["metadata"]["uid"]}
            for o in owners
        ]
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": md}


def test_dependents_of_a_deleted_owner_are_deleted(client: KubeClient, ns: str) -> None:
    owner = client.create(cm(ns, "owner"))
    client.create(cm(ns, "child", owner))
    grandchild_owner = client.get(CM, "child", ns)
    client.create(cm(ns, "grandchild", grandchild_owner))
    client.delete(CM, "owner", ns)
    wait_for(lambda: client.get_or_none(CM, "child", ns) is None, what="child collected")
    wait_for(lambda: client.get_or_none(CM, "grandchild", ns) is None, what="grandchild collected")


def test_a_dependent_with_a_live_owner_only_loses_the_dead_reference(client: KubeClient, ns: str) -> None:
    a = client.create(cm(ns, "a"))
    b = client.create(cm(ns, "b"))
    client.create(cm(ns, "shared", a, b))
    client.delete(CM, "a", ns)

    def unlinked() -> dict[str, Any] | None:
        o = client.get_or_none(CM, "shared", ns)
        return o if o is not None and len(o["metadata"].get("ownerReferences", [])) == 1 else None

    shared = wait_for(unlinked, what="reference to a dropped")
    assert shared["metadata"]["ownerReferences"][0]["uid"] == b["metadata"]["uid"]


def test_a_reference_to_an_older_object_of_the_same_name_is_dangling(client: KubeClient, ns: str) -> None:
    old = client.create(cm(ns, "reborn"))
    client.delete(CM, "reborn", ns)
    client.create(cm(ns, "reborn"))
    client.create(cm(ns, "stale-child", old))
    wait_for(lambda: client.get_or_none(CM, "stale-child", ns) is None, what="stale child collected")
    assert client.get_or_none(CM, "reborn", ns) is not None


def test_foreground_deletion_of_plain_objects(client: KubeClient, ns: str) -> None:
    owner = client.create(cm(ns, "fg-owner"))
    child = cm(ns, "fg-child", owner)
    child["metadata"]["ownerReferences"][0]["blockOwnerDeletion"] = True
    child["metadata"]["finalizers"] = ["example.com/hold"]
    client.create(child)
    client.delete(CM, "fg-owner", ns, propagation="Foreground")
    held = wait_for(
        lambda: (client.get_or_none(CM, "fg-child", ns) or {}).get("metadata", {}).get("deletionTimestamp"),
        what="child being deleted",
    )
    assert held
    assert client.get(CM, "fg-owner", ns)["metadata"]["finalizers"] == ["foregroundDeletion"]
    edit(client, CM, "fg-child", ns, lambda c: c["metadata"].update(finalizers=[]))
    wait_for(lambda: client.get_or_none(CM, "fg-owner", ns) is None, what="owner gone after its child")
