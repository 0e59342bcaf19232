"""Which objects a controller owns: ``ControllerRefManager.ClaimObject`` (adoption and release).

An object controlled by the owner stays owned while the owner's selector matches it and is
released when it no longer does; an orphan that matches is adopted, unless it or the owner is
being deleted; an object controlled by anyone else is never touched.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from fleetnet.plan.controllers.meta import Obj, controller_ref, deleting, namespace, uid


@dataclass(frozen=True, slots=True)
class Claim:
    owned: tuple[Obj, ...]  # already ours and matching
    adopt: tuple[Obj, ...]  # orphans that match: add our controller reference
    release: tuple[Obj, ...]  # ours that no longer match: drop our reference


def claim(owner: Obj, candidates: Iterable[Obj], matches: Callable[[Obj], bool]) -> Claim:
    owned: list[Obj] = []
    adopt: list[Obj] = []
    release: list[Obj] = []
    owner_uid, owner_deleting = uid(owner), deleting(owner)
    for obj in candidates:
        ref = controller_ref(obj)
        if ref is not None:
            if ref.get("uid") != owner_uid:
                continue
            if matches(obj):
                owned.append(obj)
            elif not owner_deleting:
                release.append(obj)
            continue
        if owner_deleting or not matches(obj) or deleting(obj):
            continue
        if namespace(owner) and namespace(owner) != namespace(obj):
            continue
        adopt.append(obj)
    return Claim(tuple(owned), tuple(adopt), tuple(release))


def with_controller(obj: Obj, ref: dict[str, object]) -> Obj:
    out = copy.deepcopy(obj)
    md = out.setdefault("metadata", {})
    md["ownerReferences"] = [*(md.get("ownerReferences") or []), dict(ref)]
    return out


def without_owner(obj: Obj, owner_uid: str) -> Obj:
    out = copy.deepcopy(obj)
    md = out.setdefault("metadata", {})
    refs = [r for r in md.get("ownerReferences") or [] if r.get("uid") != owner_uid]
    if refs:
        md["ownerReferences"] = refs
    else:
        md.pop("ownerReferences", None)
    return out
