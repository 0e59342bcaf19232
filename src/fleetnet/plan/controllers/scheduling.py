"""Where kube-scheduler would put a pod: the filters users meet on a small cluster, then fewest pods.

Filters, in the default profile's order, each with the reason kube reports: NodeUnschedulable
(``spec.unschedulable``), TaintToleration (``NoSchedule``/``NoExecute`` taints, including the
``not-ready`` and ``unreachable`` ones kube's node lifecycle controller puts on a node that is not
Ready), NodeAffinity (``nodeSelector`` and required node affinity). Among the nodes left, the one
with the fewest pods wins, ties by name. A pod nowhere to go gets kube's ``FitError`` message.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fleetnet.plan.controllers.meta import Obj, condition, deleting, labels, name, node_name, pod_terminal

DEFAULT_SCHEDULER = "default-scheduler"
NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
UNSCHEDULABLE = "node.kubernetes.io/unschedulable"
NO_NODES = "no nodes available to schedule pods"
_UNSCHEDULABLE_MSG = "node(s) were unschedulable"
_AFFINITY_MSG = "node(s) didn't match Pod's node affinity/selector"


@dataclass(frozen=True, slots=True)
class Placement:
    node: str | None
    message: str = ""  # when node is None: why (the FitError text kube puts in PodScheduled)


def wants_scheduling(pod: Mapping[str, Any]) -> bool:
    spec = pod.get("spec") or {}
    return (
        not node_name(pod)
        and not deleting(pod)
        and not pod_terminal(pod)
        and (spec.get("schedulerName") or DEFAULT_SCHEDULER) == DEFAULT_SCHEDULER
    )


def node_taints(node: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The node's taints, plus the one kube's lifecycle controller sets while it is not Ready."""
    taints = [dict(t) for t in (node.get("spec") or {}).get("taints") or []]
    ready = condition(node, "Ready")
    key = None
    if ready is None or ready.get("status") == "False":
        key = NOT_READY
    elif ready.get("status") != "True":
        key = UNREACHABLE
    if key is not None and not any(t.get("key") == key and t.get("effect") == "NoSchedule" for t in taints):
        taints.append({"key": key, "effect": "NoSchedule"})
    return taints


def tolerates(tolerations: Sequence[Mapping[str, Any]], taint: Mapping[str, Any]) -> bool:
    for t in tolerations:
        if t.get("effect") and t.get("effect") != taint.get("effect"):
            continue
        if t.get("key") and t.get("key") != taint.get("key"):
            continue
        op = t.get("operator") or "Equal"
        if op == "Exists" or (op == "Equal" and (t.get("value") or "") == (taint.get("value") or "")):
            return True
    return False


def _requirement(req: Mapping[str, Any], values: Mapping[str, str]) -> bool:
    key, op = str(req.get("key")), str(req.get("operator"))
    want = [str(v) for v in req.get("values") or []]
    has = key in values
    if op == "In":
        return has and values[key] in want
    if op == "NotIn":
        return not has or values[key] not in want
    if op == "Exists":
        return has
    if op == "DoesNotExist":
        return not has
    if op in ("Gt", "Lt") and has and len(want) == 1:
        try:
            a, b = int(values[key]), int(want[0])
        except ValueError:
            return False
        return a > b if op == "Gt" else a < b
    return False


def _term(term: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    exprs = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not exprs and not fields:
        return False  # an empty term matches nothing
    lbl = labels(node)
    return all(_requirement(e, lbl) for e in exprs) and all(
        _requirement(f, {"metadata.name": name(node)}) for f in fields
    )


def matches_affinity(pod: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    spec = pod.get("spec") or {}
    lbl = labels(node)
    if any(lbl.get(k) != v for k, v in (spec.get("nodeSelector") or {}).items()):
        return False
    required = (
        ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get("requiredDuringSchedulingIgnoredDuringExecution")
        or {}
    ).get("nodeSelectorTerms")
    if required is None:
        return True
    return any(_term(t, node) for t in required)


def fit_failure(pod: Mapping[str, Any], node: Mapping[str, Any]) -> str | None:
    """The first filter that rejects ``node`` for ``pod``, as kube words it; None if it fits."""
    tolerations = (pod.get("spec") or {}).get("tolerations") or []
    if (node.get("spec") or {}).get("unschedulable") and not tolerates(
        tolerations, {"key": UNSCHEDULABLE, "effect": "NoSchedule"}
    ):
        return _UNSCHEDULABLE_MSG
    for taint in node_taints(node):
        if taint.get("effect") not in ("NoSchedule", "NoExecute"):
            continue
        if not tolerates(tolerations, taint):
            return f"node(s) had untolerated taint {{{taint.get('key')}: {taint.get('value') or ''}}}"
    if not matches_affinity(pod, node):
        return _AFFINITY_MSG
    return None


def fit_error(total: int, reasons: Mapping[str, int]) -> str:
    """``FitError.Error()`` with the preemption post-filter's verdict for filters it cannot help."""
    parts = sorted(f"{count} {reason}" for reason, count in reasons.items())
    head = f"0/{total} nodes are available: {', '.join(parts)}."
    return f"{head} preemption: 0/{total} nodes are available: {total} Preemption is not helpful for scheduling."


def place(pod: Mapping[str, Any], nodes: Sequence[Obj], load: Mapping[str, int]) -> Placement:
    """The node for ``pod``: among those that fit, the fewest pods (``load``), ties by name."""
    if not nodes:
        return Placement(None, NO_NODES)
    reasons: Counter[str] = Counter()
    fitting: list[str] = []
    for node in nodes:
        why = fit_failure(pod, node)
        if why is None:
            fitting.append(name(node))
        else:
            reasons[why] += 1
    if not fitting:
        return Placement(None, fit_error(len(nodes), reasons))
    return Placement(min(fitting, key=lambda n: (load.get(n, 0), n)))


def pods_per_node(pods: Sequence[Obj]) -> Counter[str]:
    return Counter(node_name(p) for p in pods if node_name(p) and not pod_terminal(p))
