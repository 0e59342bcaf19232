"""The Tables ``kubectl get`` prints: kube's printer columns per kind, and its ages."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from fleetnet.kube import tables

NOW = datetime.datetime(2026, 12, 7, 12, 0, tzinfo=datetime.UTC).timestamp()
CREATED = "2026-12-07T11:55:00Z"  # five minutes before NOW


def cells(kind: str, obj: dict[str, Any]) -> list[Any]:
    return list(tables.table(kind, [obj], NOW, "None")["rows"][0]["cells"])


def names(kind: str) -> list[str]:
    return [c["name"] for c in tables.table(kind, [], NOW, "None")["columnDefinitions"]]


@pytest.mark.parametrize(
    "seconds, text",
    [
        (-5, "<invalid>"),
        (-0.5, "0s"),
        (0, "0s"),
        (119, "119s"),
        (120, "2m"),
        (200, "3m20s"),
        (599, "9m59s"),
        (600, "10m"),
        (3 * 3600 - 1, "179m"),
        (3 * 3600, "3h"),
        (7 * 3600 + 59 * 60, "7h59m"),
        (8 * 3600 + 59 * 60, "8h"),
        (47 * 3600, "47h"),
        (2 * 86400, "2d"),
        (7 * 86400 + 23 * 3600, "7d23h"),
        (8 * 86400 + 23 * 3600, "8d"),
        (729 * 86400, "729d"),
        (730 * 86400, "2y"),
        (730 * 86400 + 86400, "2y1d"),
        (8 * 365 * 86400, "8y"),
    ],
)
def test_human_duration_follows_kube(seconds: float, text: str) -> None:
    assert tables.human_duration(seconds) == text


def test_age_without_creation_time_is_unknown() -> None:
    assert cells("ConfigMap", {"metadata": {"name": "c"}}) == ["c", 0, "<unknown>"]


def test_pod_columns_and_statuses() -> None:
    assert names("Pod") == [
        "Name",
        "Ready",
        "Status",
        "Restarts",
        "Age",
        "IP",
        "Node",
        "Nominated Node",
        "Readiness Gates",
    ]
    defs = tables.table("Pod", [], NOW, "None")["columnDefinitions"]
    assert defs[0]["format"] == "name" and [d["priority"] for d in defs] == [0] * 5 + [1] * 4
    running: dict[str, Any] = {
        "metadata": {"name": "web", "creationTimestamp": CREATED},
        "spec": {"containers": [{"name": "c"}], "nodeName": "n1"},
        "status": {"phase": "Running", "podIP": "10.1.0.5", "containerStatuses": [{"ready": True, "restartCount": 3}]},
    }
    assert cells("Pod", running) == ["web", "1/1", "Running", 3, "5m", "10.1.0.5", "n1", "<none>", "<none>"]
    crash = {
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c"}]},
        "status": {"phase": "Running", "containerStatuses": [{"state": {"waiting": {"reason": "CrashLoopBackOff"}}}]},
    }
    assert cells("Pod", crash)[:3] == ["p", "0/1", "CrashLoopBackOff"]
    done = {
        "metadata": {"name": "j"},
        "spec": {"containers": [{"name": "c"}]},
        "status": {"phase": "Succeeded", "containerStatuses": [{"state": {"terminated": {"reason": "Completed"}}}]},
    }
    assert cells("Pod", done)[2] == "Completed"
    running["metadata"]["deletionTimestamp"] = CREATED
    assert cells("Pod", running)[2] == "Terminating"


def test_pod_readiness_gates_count_true_conditions() -> None:
    pod = {
        "metadata": {"name": "g"},
        "spec": {"containers": [], "readinessGates": [{"conditionType": "a"}, {"conditionType": "b"}]},
        "status": {"conditions": [{"type": "a", "status": "True"}, {"type": "Ready", "status": "True"}]},
    }
    assert cells("Pod", pod)[-1] == "1/2"


def test_pod_objects_by_include_object() -> None:
    pod = {"metadata": {"name": "p", "namespace": "default"}, "spec": {}}
    assert "object" not in tables.table("Pod", [pod], NOW, "None")["rows"][0]
    assert tables.table("Pod", [pod], NOW, "Object")["rows"][0]["object"] is pod
    t = tables.table("Pod", [pod], NOW, "Metadata")
    assert t["rows"][0]["object"] == {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": pod["metadata"],
    }
    assert (t["kind"], t["apiVersion"], t["metadata"]) == ("Table", "meta.k8s.io/v1", {})


def test_node() -> None:
    assert names("Node") == [
        "Name",
        "Status",
        "Roles",
        "Age",
        "Version",
        "Internal-IP",
        "External-IP",
        "OS-Image",
        "Kernel-Version",
        "Container-Runtime",
    ]
    node = {
        "metadata": {
            "name": "n1",
            "creationTimestamp": CREATED,
            "labels": {"node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/etcd": ""},
        },
        "spec": {"unschedulable": True},
        "status": {
            "conditions": [{"type": "Ready", "status": "False"}],
            "addresses": [{"type": "InternalIP", "address": "10.0.0.2"}],
            "nodeInfo": {
                "kubeletVersion": "v1.37.1",
                "osImage": "Debian",
                "kernelVersion": "6.1",
                "containerRuntimeVersion": "fleetnet://1",
            },
        },
    }
    assert cells("Node", node) == [
        "n1",
        "NotReady,SchedulingDisabled",
        "control-plane,etcd",
        "5m",
        "v1.37.1",
        "10.0.0.2",
        "<none>",
        "Debian",
        "6.1",
        "fleetnet://1",
    ]
    assert cells("Node", {"metadata": {"name": "w"}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}})[
        :3
    ] == [
        "w",
        "Ready",
        "<none>",
    ]


def test_service() -> None:
    assert names("Service") == ["Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age", "Selector"]
    svc = {
        "metadata": {"name": "s", "creationTimestamp": CREATED},
        "spec": {
            "type": "NodePort",
            "clusterIP": "10.96.0.9",
            "ports": [{"port": 80, "nodePort": 30080}, {"port": 53, "protocol": "UDP"}],
            "selector": {"app": "web"},
        },
    }
    assert cells("Service", svc) == ["s", "NodePort", "10.96.0.9", "<none>", "80:30080/TCP,53/UDP", "5m", "app=web"]


def test_deployment() -> None:
    assert names("Deployment") == [
        "Name",
        "Ready",
        "Up-to-date",
        "Available",
        "Age",
        "Containers",
        "Images",
        "Selector",
    ]
    dep = {
        "metadata": {"name": "d", "creationTimestamp": CREATED},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "d"}},
            "template": {"spec": {"containers": [{"name": "c", "image": "fleetnet/echo"}]}},
        },
        "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2},
    }
    assert cells("Deployment", dep) == ["d", "2/3", 3, 2, "5m", "c", "fleetnet/echo", "app=d"]


def test_custom_kinds_get_name_and_age() -> None:
    cnp = {"metadata": {"name": "allow", "creationTimestamp": CREATED}}
    assert names("CiliumNetworkPolicy") == ["Name", "Age"]
    assert cells("CiliumNetworkPolicy", cnp) == ["allow", "5m"]


def test_event_and_lease() -> None:
    ev = {
        "metadata": {"name": "e"},
        "lastTimestamp": CREATED,
        "type": "Normal",
        "reason": "Scheduled",
        "involvedObject": {"kind": "Pod", "name": "x"},
        "message": "assigned",
    }
    assert names("Event") == ["Last Seen", "Type", "Reason", "Object", "Message"]
    assert cells("Event", ev) == ["5m", "Normal", "Scheduled", "pod/x", "assigned"]
    assert cells("Lease", {"metadata": {"name": "l"}, "spec": {"holderIdentity": "n1"}}) == ["l", "n1", "<unknown>"]
