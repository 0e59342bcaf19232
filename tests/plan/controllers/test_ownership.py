"""Claiming objects for a controller: adopt matching orphans, release what no longer matches."""

from __future__ import annotations

from typing import Any

from fleetnet.plan.controllers.ownership import claim, with_controller, without_owner


def obj(name: str, app: str, owner: str | None = None, deleting: bool = False) -> dict[str, Any]:
    md: dict[str, Any] = {"name": name, "namespace": "ns", "uid": f"{name}-uid", "labels": {"app": app}}
    if owner:
        md["ownerReferences"] = [{"uid": owner, "controller": True, "kind": "X", "name": owner}]
    if deleting:
        md["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    return {"metadata": md}


def test_claims() -> None:
    owner = {"metadata": {"name": "o", "namespace": "ns", "uid": "me"}}
    objs = [
        obj("mine", "web", "me"),
        obj("stray", "db", "me"),
        obj("orphan", "web"),
        obj("dying-orphan", "web", deleting=True),
        obj("theirs", "web", "them"),
    ]
    c = claim(owner, objs, lambda o: o["metadata"]["labels"]["app"] == "web")
    assert [o["metadata"]["name"] for o in c.owned] == ["mine"]
    assert [o["metadata"]["name"] for o in c.adopt] == ["orphan"]
    assert [o["metadata"]["name"] for o in c.release] == ["stray"]
    owner["metadata"]["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    c = claim(owner, objs, lambda o: o["metadata"]["labels"]["app"] == "web")
    assert (c.adopt, c.release) == ((), ())
    adopted = with_controller(obj("orphan", "web"), {"uid": "me", "controller": True})
    assert adopted["metadata"]["ownerReferences"] == [{"uid": "me", "controller": True}]
    assert "ownerReferences" not in without_owner(adopted, "me")["metadata"]
