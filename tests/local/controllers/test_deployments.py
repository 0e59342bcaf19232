"""Deployments end to end against a real API server: the ReplicaSets and pods kube would make,
scaling, rollouts (RollingUpdate, Recreate, restart, pause), status that the real kubectl reads,
and deletion with each propagation policy."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from fleetnet.kube.client import KubeClient
from fleetnet.local.controllers import ControllerManager
from fleetnet.plan.controllers.rollout import SAFE_ALPHABET
from tests.local.controllers.kubelet import FakeKubelet
from tests.local.controllers.support import deployment, edit, kubectl, make_node, res
from tests.support.apiserver import TestApiServer
from tests.support.wait import wait_for

D, RS, POD, EV = res("Deployment"), res("ReplicaSet"), res("Pod"), res("Event")


@pytest.fixture(scope="module", autouse=True)
def nodes(client: KubeClient, manager: ControllerManager, kubelet: FakeKubelet) -> Iterator[None]:
    make_node(client, "node-a")
    make_node(client, "node-b")
    yield


def set_image(image: str) -> Callable[[dict[str, Any]], None]:
    def change(d: dict[str, Any]) -> None:
        d["spec"]["template"]["spec"]["containers"][0]["image"] = image

    return change


def rss(client: KubeClient, ns: str) -> list[dict[str, Any]]:
    return sorted(client.list(RS, ns)[0], key=lambda r: r["metadata"]["creationTimestamp"])


def pods(client: KubeClient, ns: str, live: bool = True) -> list[dict[str, Any]]:
    out = client.list(POD, ns)[0]
    return [p for p in out if not (live and p["metadata"].get("deletionTimestamp"))]


def rolled_out(client: KubeClient, ns: str, name: str, replicas: int) -> dict[str, Any] | None:
    d = client.get(D, name, ns)
    st = d.get("status") or {}
    ok = (
        st.get("observedGeneration") == d["metadata"]["generation"]
        and st.get("updatedReplicas", 0) == replicas
        and st.get("availableReplicas", 0) == replicas
        and st.get("replicas", 0) == replicas
    )
    return d if ok else None


def test_a_deployment_makes_a_replicaset_and_pods_as_kube_names_and_owns_them(client: KubeClient, ns: str) -> None:
    d = client.create(deployment("web", ns, replicas=3))
    done = wait_for(lambda: rolled_out(client, ns, "web", 3), what="web rolled out")
    (rs,) = rss(client, ns)
    h = rs["metadata"]["labels"]["pod-template-hash"]
    assert re.fullmatch(f"[{SAFE_ALPHABET}]{{1,10}}", h)
    assert rs["metadata"]["name"] == f"web-{h}"
    assert rs["metadata"]["labels"] == {"app": "web", "pod-template-hash": h}
    assert rs["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": "web",
            "uid": d["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert rs["metadata"]["annotations"] == {
        "deployment.kubernetes.io/revision": "1",
        "deployment.kubernetes.io/desired-replicas": "3",
        "deployment.kubernetes.io/max-replicas": "4",
    }
    assert rs["spec"]["selector"] == {"matchLabels": {"app": "web", "pod-template-hash": h}}
    assert rs["spec"]["replicas"] == 3
    assert rs["status"] == {
        "replicas": 3,
        "fullyLabeledReplicas": 3,
        "readyReplicas": 3,
        "availableReplicas": 3,
        "observedGeneration": 1,
    }
    ps = pods(client, ns)
    assert len(ps) == 3
    for p in ps:
        assert re.fullmatch(f"web-{h}-[{SAFE_ALPHABET}]{{5}}", p["metadata"]["name"])
        assert p["metadata"]["labels"] == {"app": "web", "pod-template-hash": h}
        (ref,) = p["metadata"]["ownerReferences"]
        assert ref == {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "name": rs["metadata"]["name"],
            "uid": rs["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
        assert p["spec"]["nodeName"] in ("node-a", "node-b")
    assert sorted(p["spec"]["nodeName"] for p in ps).count("node-a") in (1, 2)  # spread, fewest pods first
    assert done["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    st = {k: v for k, v in done["status"].items() if k != "conditions"}
    assert [c["type"] for c in done["status"]["conditions"]] == ["Available", "Progressing"]
    conds = {c["type"]: c for c in done["status"]["conditions"]}
    assert st == {
        "observedGeneration": 1,
        "replicas": 3,
        "updatedReplicas": 3,
        "readyReplicas": 3,
        "availableReplicas": 3,
    }
    assert {k: v for k, v in conds["Available"].items() if "Time" not in k} == {
        "type": "Available",
        "status": "True",
        "reason": "MinimumReplicasAvailable",
        "message": "Deployment has minimum availability.",
    }
    assert {k: v for k, v in conds["Progressing"].items() if "Time" not in k} == {
        "type": "Progressing",
        "status": "True",
        "reason": "NewReplicaSetAvailable",
        "message": f'ReplicaSet "web-{h}" has successfully progressed.',
    }

    def reasons() -> set[str]:
        return {e["reason"] for e in client.list(EV, ns)[0]}

    wait_for(lambda: {"ScalingReplicaSet", "SuccessfulCreate", "Scheduled"} <= reasons(), what="events")
    scaling = [e for e in client.list(EV, ns)[0] if e["reason"] == "ScalingReplicaSet"]
    assert scaling[0]["message"] == f"Scaled up replica set web-{h} from 0 to 3"
    assert scaling[0]["involvedObject"]["kind"] == "Deployment"
    assert scaling[0]["source"] == {"component": "deployment-controller"}


def test_scaling_up_and_down_with_kubectl_scale(api: TestApiServer, client: KubeClient, ns: str) -> None:
    client.create(deployment("sc", ns, replicas=2))
    wait_for(lambda: rolled_out(client, ns, "sc", 2), what="2 replicas")
    out = kubectl(api, "-n", ns, "scale", "deployment/sc", "--replicas=5")
    assert out.returncode == 0, out.stderr
    wait_for(lambda: rolled_out(client, ns, "sc", 5), what="5 replicas")
    assert len(pods(client, ns)) == 5
    (rs,) = rss(client, ns)
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] == "5"
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/max-replicas"] == "7"
    assert kubectl(api, "-n", ns, "scale", "deployment/sc", "--replicas=1").returncode == 0
    wait_for(lambda: rolled_out(client, ns, "sc", 1) and len(pods(client, ns, live=False)) == 1, what="1 replica")
    scaling = sorted(e["message"] for e in client.list(EV, ns)[0] if e["reason"] == "ScalingReplicaSet")
    name = rs["metadata"]["name"]
    assert scaling == sorted(
        [
            f"Scaled up replica set {name} from 0 to 2",
            f"Scaled up replica set {name} from 2 to 5",
            f"Scaled down replica set {name} from 5 to 1",
        ]
    )


def test_kubectl_rollout_status_and_wait_for_available_succeed(api: TestApiServer, client: KubeClient, ns: str) -> None:
    client.create(deployment("ro", ns, replicas=2))
    out = kubectl(api, "-n", ns, "rollout", "status", "deployment/ro", "--timeout=60s")
    assert out.returncode == 0, out.stderr
    assert 'deployment "ro" successfully rolled out' in out.stdout
    out = kubectl(api, "-n", ns, "wait", "--for=condition=Available", "deployment/ro", "--timeout=60s")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "deployment.apps/ro condition met"


def test_rollout_restart_makes_a_new_replicaset_and_scales_the_old_one_to_zero(
    api: TestApiServer, client: KubeClient, ns: str
) -> None:
    client.create(deployment("rr", ns, replicas=4))
    wait_for(lambda: rolled_out(client, ns, "rr", 4), what="rolled out")
    (old,) = rss(client, ns)
    out = kubectl(api, "-n", ns, "rollout", "restart", "deployment/rr")
    assert out.returncode == 0, out.stderr
    out = kubectl(api, "-n", ns, "rollout", "status", "deployment/rr", "--timeout=60s")
    assert out.returncode == 0, out.stderr
    wait_for(lambda: len(pods(client, ns, live=False)) == 4, what="old pods gone")
    both = {r["metadata"]["name"]: r for r in rss(client, ns)}
    assert len(both) == 2
    new = next(r for n, r in both.items() if n != old["metadata"]["name"])
    assert both[old["metadata"]["name"]]["spec"]["replicas"] == 0
    assert new["spec"]["replicas"] == 4
    assert new["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    assert "kubectl.kubernetes.io/restartedAt" in new["spec"]["template"]["metadata"]["annotations"]
    assert {p["metadata"]["labels"]["pod-template-hash"] for p in pods(client, ns)} == {
        new["metadata"]["labels"]["pod-template-hash"]
    }
    assert client.get(D, "rr", ns)["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    history = kubectl(api, "-n", ns, "rollout", "history", "deployment/rr")
    assert (
        history.returncode == 0
        and re.search(r"^1\s", history.stdout, re.M)
        and re.search(r"^2\s", history.stdout, re.M)
    )


def test_a_rolling_update_keeps_within_surge_and_unavailability(
    client: KubeClient, kubelet: FakeKubelet, ns: str
) -> None:
    """maxSurge 1, maxUnavailable 0: never more than replicas+1 pods wanted, never fewer available
    than replicas; a new pod that is not ready holds the rollout."""
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    client.create(deployment("ru", ns, replicas=3, strategy=strategy))
    wait_for(lambda: rolled_out(client, ns, "ru", 3), what="rolled out")
    old_hash = rss(client, ns)[0]["metadata"]["labels"]["pod-template-hash"]
    kubelet.ready = lambda pod: pod["metadata"]["labels"].get("pod-template-hash") == old_hash
    edit(client, D, "ru", ns, set_image("fleetnet/echo:2"))

    def held() -> dict[str, Any] | None:
        new = [r for r in rss(client, ns) if r["metadata"]["labels"]["pod-template-hash"] != old_hash]
        st = client.get(D, "ru", ns).get("status") or {}
        surged = len(new) == 1 and new[0]["spec"]["replicas"] == 1 and st.get("replicas") == 4
        return st if surged else None

    st = wait_for(held, what="one surge pod")
    assert st["availableReplicas"] == 3 and st["unavailableReplicas"] == 1 and st["updatedReplicas"] == 1
    (old,) = [r for r in rss(client, ns) if r["metadata"]["labels"]["pod-template-hash"] == old_hash]
    assert old["spec"]["replicas"] == 3  # nothing old goes while the new pod is not ready
    kubelet.ready = lambda pod: True
    kubelet.poke()
    wait_for(lambda: rolled_out(client, ns, "ru", 3), what="rolled out again")
    by_hash = {r["metadata"]["labels"]["pod-template-hash"]: r["spec"]["replicas"] for r in rss(client, ns)}
    assert by_hash.pop(old_hash) == 0 and list(by_hash.values()) == [3]


def test_recreate_scales_old_pods_away_before_making_new_ones(
    client: KubeClient, kubelet: FakeKubelet, ns: str
) -> None:
    client.create(deployment("rc", ns, replicas=2, strategy={"type": "Recreate"}))
    wait_for(lambda: rolled_out(client, ns, "rc", 2), what="rolled out")
    kubelet.hold_deletions = True
    gen = edit(client, D, "rc", ns, set_image("fleetnet/echo:2"))["metadata"]["generation"]

    def old_terminating() -> bool:
        st = client.get(D, "rc", ns).get("status") or {}
        ps = pods(client, ns, live=False)
        return (
            st.get("observedGeneration") == gen and bool(ps) and all(p["metadata"].get("deletionTimestamp") for p in ps)
        )

    wait_for(old_terminating, what="old pods terminating")
    assert len(rss(client, ns)) == 1 and rss(client, ns)[0]["spec"]["replicas"] == 0  # no new one yet
    kubelet.hold_deletions = False
    kubelet.poke()
    wait_for(lambda: rolled_out(client, ns, "rc", 2), what="recreated")
    assert sorted(r["spec"]["replicas"] for r in rss(client, ns)) == [0, 2]


def test_revision_history_limit_deletes_the_oldest_replicasets(api: TestApiServer, client: KubeClient, ns: str) -> None:
    client.create(deployment("hl", ns, replicas=1, revisionHistoryLimit=1))
    for i in range(3):
        wait_for(lambda: rolled_out(client, ns, "hl", 1), what=f"rollout {i}")
        edit(client, D, "hl", ns, lambda o, i=i: o["spec"]["template"]["metadata"].update(annotations={"step": str(i)}))
    wait_for(lambda: rolled_out(client, ns, "hl", 1) and len(rss(client, ns)) == 2, what="history trimmed")
    revisions = sorted(int(r["metadata"]["annotations"]["deployment.kubernetes.io/revision"]) for r in rss(client, ns))
    assert revisions == [3, 4]


def test_a_paused_deployment_waits_and_resumes(api: TestApiServer, client: KubeClient, ns: str) -> None:
    client.create(deployment("pa", ns, replicas=2))
    wait_for(lambda: rolled_out(client, ns, "pa", 2), what="rolled out")
    assert kubectl(api, "-n", ns, "rollout", "pause", "deployment/pa").returncode == 0
    gen = edit(client, D, "pa", ns, set_image("fleetnet/echo:2"))["metadata"]["generation"]

    def paused() -> dict[str, Any] | None:
        st = client.get(D, "pa", ns).get("status") or {}
        prog = next((c for c in st.get("conditions", []) if c["type"] == "Progressing"), {})
        return prog if st.get("observedGeneration") == gen and prog.get("reason") == "DeploymentPaused" else None

    prog = wait_for(paused, what="paused condition")
    assert (prog["status"], prog["message"]) == ("Unknown", "Deployment is paused")
    assert len(rss(client, ns)) == 1
    assert kubectl(api, "-n", ns, "rollout", "resume", "deployment/pa").returncode == 0
    wait_for(lambda: rolled_out(client, ns, "pa", 2) and len(rss(client, ns)) == 2, what="resumed rollout")


def test_min_ready_seconds_delays_availability(client: KubeClient, ns: str) -> None:
    client.create(deployment("mr", ns, replicas=2, minReadySeconds=1))

    def ready_not_available() -> bool:
        st = client.get(D, "mr", ns).get("status") or {}
        return st.get("readyReplicas") == 2 and st.get("availableReplicas", 0) == 0

    wait_for(ready_not_available, what="ready but not yet available")
    (rs,) = rss(client, ns)
    assert rs["spec"]["minReadySeconds"] == 1
    wait_for(lambda: rolled_out(client, ns, "mr", 2), timeout=10, what="available after minReadySeconds")


def test_deleting_a_deployment_removes_its_replicasets_and_pods(client: KubeClient, ns: str) -> None:
    client.create(deployment("bg", ns, replicas=2))
    wait_for(lambda: rolled_out(client, ns, "bg", 2), what="rolled out")
    client.delete(D, "bg", ns)
    wait_for(lambda: not rss(client, ns) and not pods(client, ns, live=False), what="dependents gone")


def test_orphan_deletion_keeps_replicasets_and_pods_without_the_owner(
    api: TestApiServer, client: KubeClient, ns: str
) -> None:
    client.create(deployment("or", ns, replicas=2))
    wait_for(lambda: rolled_out(client, ns, "or", 2), what="rolled out")
    out = kubectl(api, "-n", ns, "delete", "deployment/or", "--cascade=orphan")
    assert out.returncode == 0, out.stderr
    wait_for(lambda: client.get_or_none(D, "or", ns) is None, what="deployment gone")
    (rs,) = rss(client, ns)
    assert "ownerReferences" not in rs["metadata"]
    assert len(pods(client, ns)) == 2
    assert all(p["metadata"]["ownerReferences"][0]["name"] == rs["metadata"]["name"] for p in pods(client, ns))


def test_foreground_deletion_waits_for_the_dependents(client: KubeClient, kubelet: FakeKubelet, ns: str) -> None:
    client.create(deployment("fg", ns, replicas=2))
    wait_for(lambda: rolled_out(client, ns, "fg", 2), what="rolled out")
    kubelet.hold_deletions = True
    client.delete(D, "fg", ns, propagation="Foreground")

    def pods_terminating() -> bool:
        ps = pods(client, ns, live=False)
        return len(ps) == 2 and all(p["metadata"].get("deletionTimestamp") for p in ps)

    wait_for(pods_terminating, what="pods being deleted")
    d = client.get(D, "fg", ns)
    assert d["metadata"]["finalizers"] == ["foregroundDeletion"] and d["metadata"]["deletionTimestamp"]
    (rs,) = rss(client, ns)
    assert rs["metadata"]["finalizers"] == ["foregroundDeletion"]
    kubelet.hold_deletions = False
    kubelet.poke()
    wait_for(lambda: client.get_or_none(D, "fg", ns) is None, what="deployment gone last")
    assert not rss(client, ns) and not pods(client, ns, live=False)
