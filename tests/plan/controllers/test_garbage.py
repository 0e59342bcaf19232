"""The garbage collector's verdict on an object from the state of its owners."""

from __future__ import annotations

from typing import Any

from fleetnet.plan.controllers.garbage import Owner, blocking, deletion_mode, verdict, without_finalizer


def obj(*owners: str, finalizers: list[str] | None = None, deleting: bool = False) -> dict[str, Any]:
    md: dict[str, Any] = {"name": "x", "uid": "x-uid"}
    md["ownerReferences"] = [
        {"uid": u, "kind": "ConfigMap", "name": u, "blockOwnerDeletion": u != "soft"} for u in owners
    ]
    if finalizers:
        md["finalizers"] = finalizers
    if deleting:
        md["deletionTimestamp"] = "2024-01-01T00:00:00Z"
    return {"metadata": md}


def test_verdicts() -> None:
    alive, gone, fg = Owner(True), Owner(False), Owner(True, foreground=True)
    assert verdict(obj("a"), {"a": alive}, False).action == "keep"
    assert verdict(obj("a"), {"a": gone}, False) == verdict(obj("a"), {}, False)
    assert verdict(obj("a"), {"a": gone}, False).policy == "Background"
    v = verdict(obj("a", "b", "c"), {"a": alive, "b": gone, "c": fg}, False)
    assert (v.action, v.unlink) == ("unlink", ("b", "c"))
    assert verdict(obj("a"), {"a": fg}, True).policy == "Foreground"
    assert verdict(obj("a"), {"a": fg}, False).policy == "Background"
    assert verdict(obj("a", finalizers=["orphan"]), {"a": gone}, False).policy == "Orphan"
    assert verdict(obj("a", finalizers=["foregroundDeletion"]), {"a": gone}, True).policy == "Foreground"


def test_deletion_modes_and_blocking_dependents() -> None:
    assert deletion_mode(obj(finalizers=["orphan"], deleting=True)) == "orphan"
    assert deletion_mode(obj(finalizers=["foregroundDeletion"], deleting=True)) == "foreground"
    assert deletion_mode(obj(finalizers=["orphan"])) is None
    hard, soft = obj("o"), obj("soft")
    assert blocking("o", [hard, soft]) == [hard]
    assert blocking("soft", [hard, soft]) == []
    assert "finalizers" not in without_finalizer(obj(finalizers=["orphan"]), "orphan")["metadata"]
