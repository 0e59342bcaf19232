"""What the garbage collector does with an object, from what it knows of the object's owners.

``attemptToDeleteItem`` of ``pkg/controller/garbagecollector``: each owner reference is *solid*
(the owner exists with that uid and is not waiting for its dependents), *dangling* (no such
owner: gone, or a new object of the same name) or *waiting* (the owner is being deleted in the
foreground). An object with a solid owner keeps it and loses the other references; one whose
owners are all gone is deleted — in the foreground if an owner waits on it and it has dependents
of its own, else with the propagation its own finalizers ask for, or in the background. An owner
being deleted in the foreground keeps its ``foregroundDeletion`` finalizer while any dependent
that blocks owner deletion is left.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from fleetnet.plan.controllers.meta import (
    FOREGROUND_FINALIZER,
    ORPHAN_FINALIZER,
    Obj,
    deleting,
    finalizers,
    owner_refs,
)


@dataclass(frozen=True, slots=True)
class Owner:
    """What is known of the target of one owner reference."""

    exists: bool  # an object of that kind and name, with that uid
    foreground: bool = False  # it is being deleted with foregroundDeletion


@dataclass(frozen=True, slots=True)
class Verdict:
    action: str  # keep | unlink | delete
    unlink: tuple[str, ...] = ()  # owner uids to drop from ownerReferences
    policy: str = "Background"  # propagation of the delete


KEEP = Verdict("keep")


def verdict(item: Obj, owners: Mapping[str, Owner], has_dependents: bool) -> Verdict:
    """``owners``: by uid, one entry per owner reference of ``item``."""
    solid: list[str] = []
    dangling: list[str] = []
    waiting: list[str] = []
    for ref in owner_refs(item):
        o = owners.get(str(ref.get("uid")))
        if o is None or not o.exists:
            dangling.append(str(ref.get("uid")))
        elif o.foreground:
            waiting.append(str(ref.get("uid")))
        else:
            solid.append(str(ref.get("uid")))
    if not dangling and not waiting:
        return KEEP
    if solid:
        return Verdict("unlink", tuple(dangling + waiting))
    if waiting and has_dependents:
        return Verdict("delete", policy="Foreground")
    fin = finalizers(item)
    if ORPHAN_FINALIZER in fin:
        return Verdict("delete", policy="Orphan")
    if FOREGROUND_FINALIZER in fin:
        return Verdict("delete", policy="Foreground")
    return Verdict("delete", policy="Background")


def deletion_mode(obj: Obj) -> str | None:
    """What the collector owes an object being deleted: ``orphan`` its dependents, delete them
    first (``foreground``), or nothing (None)."""
    if not deleting(obj):
        return None
    fin = finalizers(obj)
    if ORPHAN_FINALIZER in fin:
        return "orphan"
    if FOREGROUND_FINALIZER in fin:
        return "foreground"
    return None


def blocking(owner_uid: str, dependents: Iterable[Obj]) -> list[Obj]:
    """The dependents that hold up the foreground deletion of ``owner_uid``."""
    return [
        d for d in dependents if any(r.get("uid") == owner_uid and r.get("blockOwnerDeletion") for r in owner_refs(d))
    ]


def without_finalizer(obj: Obj, finalizer: str) -> Obj:
    import copy

    out = copy.deepcopy(obj)
    md = out.setdefault("metadata", {})
    rest = [f for f in md.get("finalizers") or [] if f != finalizer]
    if rest:
        md["finalizers"] = rest
    else:
        md.pop("finalizers", None)
    return out
