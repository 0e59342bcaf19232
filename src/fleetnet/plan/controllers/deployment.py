"""One sync of a Deployment, as ``pkg/controller/deployment`` (``syncDeployment``) decides it.

``plan_deployment`` follows kube's control flow step by step — selector check, deletion (status
only), paused and resumed conditions, scaling events (proportional scaling across ReplicaSets),
RollingUpdate (scale the new ReplicaSet up within ``maxSurge``, clean up unhealthy old ones,
scale old ones down while ``maxUnavailable`` allows) or Recreate (old ones to zero, wait for their
pods to go, then the new one), revision-history clean-up, and the rollout status with its
conditions. Where kube writes as it goes, this records the writes in order on working copies, so
that later steps see what earlier ones did; the effects are applied afterwards, once.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fleetnet.plan.controllers import rollout as ro
from fleetnet.plan.controllers.actions import Event, Write
from fleetnet.plan.controllers.meta import (
    Obj,
    by_creation,
    controller_ref,
    deleting,
    generation,
    name,
    namespace,
    new_controller_ref,
    parse_time,
    phase,
    selects_everything,
    uid,
)


@dataclass(frozen=True, slots=True)
class DeploymentPlan:
    writes: tuple[Write, ...] = ()  # ReplicaSets to create, update or delete, in order
    annotations: dict[str, str] | None = None  # the Deployment's new metadata.annotations
    status: dict[str, Any] | None = None  # the Deployment's new status
    events: tuple[Event, ...] = ()  # about the Deployment, not tied to a write
    requeue_after: float | None = None  # look again then (progress deadline)
    retry: bool = False  # this sync could not finish (a hash collision): again, with back-off


def plan_deployment(
    d: Obj, rss: Sequence[Obj], pods: Sequence[Obj], now: float, taken: Mapping[str, Obj] | None = None
) -> DeploymentPlan:
    """The sync of ``d``. ``rss``: the ReplicaSets it controls; ``pods``: their pods; ``taken``:
    every ReplicaSet of the namespace by name (a new one's name may be taken: a hash collision)."""
    s = _Sync(d, rss, pods, now, taken or {})
    s.run()
    status = None
    if ro.packed(s.d.get("status") or {}) != ro.packed(d.get("status") or {}):
        status = ro.packed(s.d["status"])
    new_ann = dict((s.d.get("metadata") or {}).get("annotations") or {})
    ann = new_ann if new_ann != dict((d.get("metadata") or {}).get("annotations") or {}) else None
    return DeploymentPlan(tuple(s.writes), ann, status, tuple(s.events), s.requeue, s.stop)


def _min_ready(obj: Mapping[str, Any]) -> int:
    return int((obj.get("spec") or {}).get("minReadySeconds") or 0)


def _avail(rs: Mapping[str, Any]) -> int:
    return int((rs.get("status") or {}).get("availableReplicas") or 0)


def _cmp_creation(a: Obj, b: Obj) -> int:
    ka, kb = by_creation(a), by_creation(b)
    return -1 if ka < kb else (1 if ka > kb else 0)


def _size_newer(a: Obj, b: Obj) -> int:
    """``ReplicaSetsBySizeNewer``: larger first, then newer first."""
    if ro.replicas(a) != ro.replicas(b):
        return -1 if ro.replicas(a) > ro.replicas(b) else 1
    return -_cmp_creation(a, b)


def _size_older(a: Obj, b: Obj) -> int:
    """``ReplicaSetsBySizeOlder``: larger first, then older first."""
    if ro.replicas(a) != ro.replicas(b):
        return -1 if ro.replicas(a) > ro.replicas(b) else 1
    return _cmp_creation(a, b)


def _round(x: float) -> int:
    """``integer.RoundToInt32``: halves away from zero."""
    return int(x - 0.5) if x < 0 else int(x + 0.5)


class _Sync:
    def __init__(self, d: Obj, rss: Sequence[Obj], pods: Sequence[Obj], now: float, taken: Mapping[str, Obj]) -> None:
        self.d = copy.deepcopy(d)  # kube's in-memory Deployment: annotations and status change as it goes
        self.d.setdefault("status", {})
        self.d.setdefault("metadata", {})
        self.rss = [copy.deepcopy(rs) for rs in rss]
        self.pods = pods
        self.now = now
        self.taken = taken
        self.writes: list[Write] = []
        self.events: list[Event] = []
        self.requeue: float | None = None
        self.stop = False

    # ------------------------------------------------------------------ working copies
    def _latest(self, rs: Obj | None) -> Obj | None:
        if rs is None:
            return None
        return next((r for r in self.rss if name(r) == name(rs)), rs)

    def _olds(self, olds: Sequence[Obj]) -> list[Obj]:
        return [r for r in (self._latest(o) for o in olds) if r is not None]

    def _update(self, rs: Obj, events: tuple[Event, ...] = ()) -> None:
        self.rss = [rs if name(r) == name(rs) else r for r in self.rss]
        for i, w in enumerate(self.writes):
            if w.verb in ("create", "update") and name(w.obj) == name(rs):
                self.writes[i] = Write(w.verb, rs, w.events + events)
                return
        self.writes.append(Write("update", rs, events))

    # ------------------------------------------------------------------ syncDeployment
    def run(self) -> None:
        d = self.d
        if selects_everything(d):
            self.events.append(
                Event(
                    "Warning",
                    "SelectingAll",
                    "This deployment is selecting all pods. A non-empty selector is required.",
                )
            )
            if int(d["status"].get("observedGeneration") or 0) < generation(d):
                d["status"]["observedGeneration"] = generation(d)
            return
        if deleting(d):
            new, olds = self.get_all(create=False)
            self.sync_status(self._all(new, olds), new)
            return
        self.check_paused()
        if (d.get("spec") or {}).get("paused"):
            self.sync()
            return
        if self.is_scaling_event():
            self.sync()
            return
        if ro.is_rolling(d):
            self.rollout_rolling()
        else:
            self.rollout_recreate()

    def _all(self, new: Obj | None, olds: Sequence[Obj]) -> list[Obj]:
        out = self._olds(olds)
        latest = self._latest(new)
        return [*out, latest] if latest is not None else out

    # ------------------------------------------------------------------ new ReplicaSet and revisions
    def get_all(self, create: bool) -> tuple[Obj | None, list[Obj]]:
        """``getAllReplicaSetsAndSyncRevision``."""
        existing = ro.find_new(self.d, self.rss)
        olds = [rs for rs in self.rss if existing is None or name(rs) != name(existing)]
        return self.get_new(existing, olds, create), olds

    def _set_revision(self, rev: str) -> None:
        ann = self.d["metadata"].setdefault("annotations", {})
        ann[ro.REVISION] = rev

    def get_new(self, existing: Obj | None, olds: list[Obj], create: bool) -> Obj | None:
        d = self.d
        new_revision = ro.max_revision(olds) + 1
        if existing is not None:
            rs = copy.deepcopy(existing)
            changed = ro.set_new_rs_annotations(d, rs, new_revision, exists=True)
            if changed or _min_ready(rs) != _min_ready(d):
                spec = rs.setdefault("spec", {})
                if _min_ready(d):
                    spec["minReadySeconds"] = _min_ready(d)
                else:
                    spec.pop("minReadySeconds", None)
                self._update(rs)
                return rs
            self._set_revision((rs["metadata"].get("annotations") or {}).get(ro.REVISION, ""))
            if ro.has_progress_deadline(d) and ro.get_condition(d["status"], ro.PROGRESSING) is None:
                cond = ro.new_condition(
                    ro.PROGRESSING, "True", ro.FOUND_NEW_RS, f'Found new replica set "{name(rs)}"', self.now
                )
                ro.set_condition(d["status"], cond)
            return rs
        if not create:
            return None
        collisions = d["status"].get("collisionCount")
        template: Obj = copy.deepcopy(dict(ro.template_of(d)))
        h = ro.template_hash(template, collisions)
        tmd = template.setdefault("metadata", {})
        tmd["labels"] = {**(tmd.get("labels") or {}), ro.LABEL_POD_TEMPLATE_HASH: h}
        sel = copy.deepcopy((d.get("spec") or {}).get("selector") or {})
        sel["matchLabels"] = {**(sel.get("matchLabels") or {}), ro.LABEL_POD_TEMPLATE_HASH: h}
        rs_name = f"{name(d)}-{h}"
        rs = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": rs_name,
                "namespace": namespace(d),
                "labels": dict(tmd["labels"]),
                "ownerReferences": [new_controller_ref(d, "Deployment", "apps/v1")],
            },
            "spec": {"replicas": 0, "selector": sel, "template": template},
        }
        if _min_ready(d):
            rs["spec"]["minReadySeconds"] = _min_ready(d)
        count = ro.new_rs_replicas(d, [*olds, rs], rs)
        rs["spec"]["replicas"] = count
        ro.set_new_rs_annotations(d, rs, new_revision, exists=False)
        clash = self.taken.get(rs_name)
        already = False
        if clash is not None:
            ref = controller_ref(clash)
            if ref is not None and ref.get("uid") == uid(d) and ro.equal_ignore_hash(ro.template_of(clash), template):
                rs, already = copy.deepcopy(clash), True
                self.rss.append(rs)
            else:  # a hash collision: count it (the next hash differs) and stop this sync
                d["status"]["collisionCount"] = int(collisions or 0) + 1
                self.stop = True
                return None
        else:
            events: tuple[Event, ...] = ()
            if count > 0:
                events = (Event("Normal", "ScalingReplicaSet", f"Scaled up replica set {rs_name} from 0 to {count}"),)
            self.writes.append(Write("create", rs, events))
            self.rss.append(rs)
        self._set_revision(str(new_revision))
        if not already and ro.has_progress_deadline(d):
            cond = ro.new_condition(
                ro.PROGRESSING, "True", ro.NEW_RS_CREATED, f'Created new replica set "{rs_name}"', self.now
            )
            ro.set_condition(d["status"], cond)
        return rs

    # ------------------------------------------------------------------ scaling one ReplicaSet
    def scale_and_record(self, rs: Obj, new_scale: int) -> tuple[bool, Obj]:
        if ro.replicas(rs) == new_scale:
            return False, rs
        return self.scale(rs, new_scale, "up" if ro.replicas(rs) < new_scale else "down")

    def scale(self, rs: Obj, new_scale: int, op: str) -> tuple[bool, Obj]:
        d = self.d
        size_changes = ro.replicas(rs) != new_scale
        maximum = ro.replicas(d) + ro.max_surge(d)
        if not size_changes and not ro.replicas_annotations_need_update(rs, ro.replicas(d), maximum):
            return False, rs
        old = ro.replicas(rs)
        out = copy.deepcopy(rs)
        out.setdefault("spec", {})["replicas"] = new_scale
        ro.set_replicas_annotations(out, ro.replicas(d), maximum)
        events: tuple[Event, ...] = ()
        if size_changes:
            msg = f"Scaled {op} replica set {name(out)} from {old} to {new_scale}"
            events = (Event("Normal", "ScalingReplicaSet", msg),)
        self._update(out, events)
        return size_changes, out

    # ------------------------------------------------------------------ paused, scaling events
    def check_paused(self) -> None:
        d = self.d
        if not ro.has_progress_deadline(d):
            return
        cond = ro.get_condition(d["status"], ro.PROGRESSING)
        if cond is not None and cond.get("reason") == ro.TIMED_OUT:
            return
        paused_shown = cond is not None and cond.get("reason") == ro.PAUSED
        paused = bool((d.get("spec") or {}).get("paused"))
        if paused and not paused_shown:
            c = ro.new_condition(ro.PROGRESSING, "Unknown", ro.PAUSED, "Deployment is paused", self.now)
            ro.set_condition(d["status"], c)
        elif not paused and paused_shown:
            c = ro.new_condition(ro.PROGRESSING, "Unknown", ro.RESUMED, "Deployment is resumed", self.now)
            ro.set_condition(d["status"], c)

    def is_scaling_event(self) -> bool:
        new, olds = self.get_all(create=False)
        for rs in ro.active(self._all(new, olds)):
            desired = ro.desired_annotation(rs)
            if desired is not None and desired != ro.replicas(self.d):
                return True
        return False

    def sync(self) -> None:
        new, olds = self.get_all(create=False)
        self.scale_all(new, olds)
        if (self.d.get("spec") or {}).get("paused"):
            self.cleanup(self._olds(olds))
        new = self._latest(new)
        self.sync_status(self._all(new, olds), new)

    def sync_status(self, all_rss: list[Obj], new: Obj | None) -> None:
        status = ro.calculate_status(all_rss, new, self.d, self.now)
        if ro.packed(status) != ro.packed(self.d["status"]):
            self.d["status"] = status

    def scale_all(self, new: Obj | None, olds: list[Obj]) -> None:
        """``scale``: one active ReplicaSet takes the whole count; otherwise the difference is
        spread over the active ones in proportion to their size."""
        d = self.d
        target = self._active_or_latest(new, olds)
        if target is not None:
            if ro.replicas(target) != ro.replicas(d):
                self.scale_and_record(target, ro.replicas(d))
            return
        if self._saturated(new):
            for old in ro.active(olds):
                self.scale_and_record(old, 0)
            return
        if not ro.is_rolling(d):
            return
        all_rss = ro.active([*olds, new] if new is not None else olds)
        allowed = ro.replicas(d) + ro.max_surge(d) if ro.replicas(d) > 0 else 0
        to_add = allowed - ro.spec_total(all_rss)
        op = ""
        if to_add > 0:
            all_rss.sort(key=functools.cmp_to_key(_size_newer))
            op = "up"
        elif to_add < 0:
            all_rss.sort(key=functools.cmp_to_key(_size_older))
            op = "down"
        added = 0
        sizes: dict[str, int] = {}
        for rs in all_rss:
            if to_add != 0:
                p = self._proportion(rs, to_add, added)
                sizes[name(rs)] = ro.replicas(rs) + p
                added += p
            else:
                sizes[name(rs)] = ro.replicas(rs)
        for i, rs in enumerate(all_rss):
            if i == 0 and to_add != 0:
                sizes[name(rs)] = max(0, sizes[name(rs)] + to_add - added)
            self.scale(rs, sizes[name(rs)], op)

    @staticmethod
    def _active_or_latest(new: Obj | None, olds: list[Obj]) -> Obj | None:
        if new is None and not olds:
            return None
        newest_first = sorted(olds, key=by_creation, reverse=True)
        act = ro.active([*newest_first, new] if new is not None else newest_first)
        if not act:
            return new if new is not None else newest_first[0]
        return act[0] if len(act) == 1 else None

    def _saturated(self, rs: Obj | None) -> bool:
        if rs is None:
            return False
        r = ro.replicas(self.d)
        return ro.replicas(rs) == r and ro.desired_annotation(rs) == r and _avail(rs) == r

    def _proportion(self, rs: Obj, to_add: int, added: int) -> int:
        if ro.replicas(rs) == 0 or to_add == 0 or to_add == added:
            return 0
        d = self.d
        if ro.replicas(d) == 0:
            fraction = -ro.replicas(rs)
        else:
            annotated = ro.max_annotation(rs)
            if annotated is None:
                annotated = int(d["status"].get("replicas") or 0)
            if annotated == 0:
                return 0
            fraction = _round(ro.replicas(rs) * (ro.replicas(d) + ro.max_surge(d)) / annotated) - ro.replicas(rs)
        allowed = to_add - added
        return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)

    # ------------------------------------------------------------------ RollingUpdate
    def rollout_rolling(self) -> None:
        new, olds = self.get_all(create=True)
        if self.stop or new is None:
            return
        if self.reconcile_new(new, olds):
            self.sync_rollout_status(new, olds)
            return
        if self.reconcile_old(new, olds):
            self.sync_rollout_status(new, olds)
            return
        if ro.complete(self.d, self.d["status"]):
            self.cleanup(self._olds(olds))
        self.sync_rollout_status(new, olds)

    def reconcile_new(self, new: Obj, olds: list[Obj]) -> bool:
        d = self.d
        if ro.replicas(new) == ro.replicas(d):
            return False
        if ro.replicas(new) > ro.replicas(d):
            return self.scale_and_record(new, ro.replicas(d))[0]
        count = ro.new_rs_replicas(d, self._all(new, olds), new)
        return self.scale_and_record(new, count)[0]

    def reconcile_old(self, new: Obj, olds: list[Obj]) -> bool:
        d = self.d
        new = self._latest(new) or new
        old_active = ro.active(self._olds(olds))
        if ro.spec_total(old_active) == 0:
            return False
        all_count = ro.spec_total(self._all(new, olds))
        min_available = ro.replicas(d) - ro.max_unavailable(d)
        new_unavailable = ro.replicas(new) - _avail(new)
        max_down = all_count - min_available - new_unavailable
        if max_down <= 0:
            return False
        # unhealthy old replicas first, or they would block the rollout
        cleaned = 0
        for rs in sorted(old_active, key=by_creation):
            if cleaned >= max_down:
                break
            if ro.replicas(rs) == 0 or ro.replicas(rs) == _avail(rs):
                continue
            n = min(max_down - cleaned, ro.replicas(rs) - _avail(rs))
            self.scale_and_record(rs, ro.replicas(rs) - n)
            cleaned += n
        scaled = self._scale_down_old_rolling(new, old_active)
        return cleaned + scaled > 0

    def _scale_down_old_rolling(self, new: Obj, old_active: list[Obj]) -> int:
        d = self.d
        min_available = ro.replicas(d) - ro.max_unavailable(d)
        # those cleaned up to zero still count with the availability they report, as in kube
        old_active = self._olds(old_active)
        available = ro.available_total([*old_active, self._latest(new) or new])
        if available <= min_available:
            return 0
        target, total = available - min_available, 0
        for rs in sorted(old_active, key=by_creation):
            if total >= target:
                break
            if ro.replicas(rs) == 0:
                continue
            n = min(ro.replicas(rs), target - total)
            self.scale_and_record(rs, ro.replicas(rs) - n)
            total += n
        return total

    # ------------------------------------------------------------------ Recreate
    def rollout_recreate(self) -> None:
        new, olds = self.get_all(create=False)
        scaled = False
        for rs in ro.active(olds):
            if self.scale_and_record(rs, 0)[0]:
                scaled = True
        if scaled or self._old_pods_running(new, olds):
            self.sync_rollout_status(new, olds)
            return
        if new is None:
            new, olds = self.get_all(create=True)
            if self.stop or new is None:
                return
        self.scale_and_record(self._latest(new) or new, ro.replicas(self.d))
        if ro.complete(self.d, self.d["status"]):
            self.cleanup(self._olds(olds))
        self.sync_rollout_status(new, olds)

    def _old_pods_running(self, new: Obj | None, olds: list[Obj]) -> bool:
        if ro.actual_total(self._olds(olds)) > 0:
            return True
        new_uid = uid(new) if new is not None else None
        for pod in self.pods:
            ref = controller_ref(pod)
            if ref is None or (new_uid and ref.get("uid") == new_uid):
                continue
            if phase(pod) not in ("Succeeded", "Failed"):
                return True
        return False

    # ------------------------------------------------------------------ history and status
    def cleanup(self, olds: list[Obj]) -> None:
        limit = (self.d.get("spec") or {}).get("revisionHistoryLimit")
        if limit is None or int(limit) == ro.NO_DEADLINE:
            return
        cleanable = [rs for rs in olds if not deleting(rs)]
        diff = len(cleanable) - int(limit)
        if diff <= 0:
            return
        cleanable.sort(key=lambda rs: (ro.revision(rs), *by_creation(rs)))
        for rs in cleanable[:diff]:
            st = rs.get("status") or {}
            if int(st.get("replicas") or 0) != 0 or ro.replicas(rs) != 0 or deleting(rs):
                continue
            if not uid(rs) or generation(rs) > int(st.get("observedGeneration") or 0):
                continue
            self.writes.append(Write("delete", rs))

    def sync_rollout_status(self, new: Obj | None, olds: list[Obj]) -> None:
        d = self.d
        new = self._latest(new)
        status = ro.calculate_status(self._all(new, olds), new, d, self.now)
        deadline = ro.has_progress_deadline(d)
        if not deadline:
            ro.remove_condition(status, ro.PROGRESSING)
        current = ro.get_condition(d["status"], ro.PROGRESSING)
        done = (
            int(status["replicas"]) == int(status["updatedReplicas"])
            and current is not None
            and current.get("reason") == ro.NEW_RS_AVAILABLE
        )
        who = ro.rs_label(new) if new is not None else f'Deployment "{name(d)}"'
        if deadline and not done:
            if ro.complete(d, status):
                c = ro.new_condition(
                    ro.PROGRESSING, "True", ro.NEW_RS_AVAILABLE, f"{who} has successfully progressed.", self.now
                )
                ro.set_condition(status, c)
            elif ro.progressing(d, status):
                c = ro.new_condition(ro.PROGRESSING, "True", ro.RS_UPDATED, f"{who} is progressing.", self.now)
                if current is not None:
                    if current.get("status") == "True":
                        c["lastTransitionTime"] = current.get("lastTransitionTime")
                    ro.remove_condition(status, ro.PROGRESSING)
                ro.set_condition(status, c)
            elif ro.timed_out(d, status, self.now):
                c = ro.new_condition(
                    ro.PROGRESSING, "False", ro.TIMED_OUT, f"{who} has timed out progressing.", self.now
                )
                ro.set_condition(status, c)
        failure = self._replica_failure(new, olds)
        if failure is not None:
            ro.set_condition(status, failure)
        else:
            ro.remove_condition(status, ro.REPLICA_FAILURE)
        if ro.packed(status) == ro.packed(d["status"]):
            self.requeue = self._requeue_stuck(status)
            return
        d["status"] = status

    def _replica_failure(self, new: Obj | None, olds: list[Obj]) -> dict[str, Any] | None:
        for rs in [new] if new is not None else []:
            for c in (rs.get("status") or {}).get("conditions") or []:
                if c.get("type") == ro.REPLICA_FAILURE:
                    return _rs_condition(c)
        for rs in self._all(new, olds):
            for c in (rs.get("status") or {}).get("conditions") or []:
                if c.get("type") == ro.REPLICA_FAILURE:
                    return _rs_condition(c)
        return None

    def _requeue_stuck(self, status: Mapping[str, Any]) -> float | None:
        d = self.d
        current = ro.get_condition(d["status"], ro.PROGRESSING)
        if not ro.has_progress_deadline(d) or current is None:
            return None
        if ro.complete(d, status) or current.get("reason") == ro.TIMED_OUT:
            return None
        since = parse_time(current.get("lastUpdateTime"))
        if since is None:
            return None
        after = since + ro.deadline(d) - self.now
        return 1.0 if after < 1 else after + 1


def _rs_condition(c: Mapping[str, Any]) -> dict[str, Any]:
    """``ReplicaSetToDeploymentCondition``."""
    return {
        "type": c.get("type"),
        "status": c.get("status"),
        "lastUpdateTime": c.get("lastTransitionTime"),
        "lastTransitionTime": c.get("lastTransitionTime"),
        "reason": c.get("reason"),
        "message": c.get("message"),
    }
