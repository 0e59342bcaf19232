"""One sync of a Deployment as kube's deployment controller makes it, and a simulated rollout
(ReplicaSets follow the plan, pods come and go at once, new ones turn ready a few at a time) that
must never exceed replicas + maxSurge pods nor drop below replicas - maxUnavailable available."""

from __future__ import annotations

from typing import Any

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from fleetnet.plan.controllers import rollout as ro
from fleetnet.plan.controllers.deployment import DeploymentPlan, plan_deployment
from fleetnet.plan.controllers.meta import format_time
from tests.plan.controllers.builders import T0, clone, deployment, pod, replicaset


class Sim:
    """The API server and the ReplicaSet controller, reduced to what a Deployment sync reads."""

    def __init__(self, d: dict[str, Any]) -> None:
        self.d = d
        self.rss: dict[str, dict[str, Any]] = {}
        self.now = T0
        self.created = 0

    def step(self) -> DeploymentPlan:
        plan = plan_deployment(self.d, list(self.rss.values()), [], self.now, dict(self.rss))
        for w in plan.writes:
            name = w.obj["metadata"]["name"]
            if w.verb == "create":
                obj = clone(w.obj)
                self.created += 1
                obj["metadata"].update(
                    uid=f"{name}-uid",
                    generation=1,
                    resourceVersion="1",
                    creationTimestamp=format_time(self.now + self.created),
                )
                obj["status"] = {"replicas": 0, "observedGeneration": 1}
                self.rss[name] = obj
            elif w.verb == "update":
                self.rss[name] = clone(w.obj)
            else:
                del self.rss[name]
        if plan.annotations is not None:
            self.d["metadata"]["annotations"] = plan.annotations
        if plan.status is not None:
            self.d["status"] = plan.status
        self.now += 1
        return plan

    def new_rs(self) -> dict[str, Any] | None:
        return ro.find_new(self.d, list(self.rss.values()))

    def run_pods(self, newly_available: Any = None) -> None:
        """Pods appear and go at once; old ones stay available, new ones become so as told."""
        new = self.new_rs()
        for rs in self.rss.values():
            want = ro.replicas(rs)
            st_ = rs["status"]
            avail = min(int(st_.get("availableReplicas") or 0), want)
            if new is not None and rs["metadata"]["name"] == new["metadata"]["name"] and avail < want:
                avail += newly_available(want - avail) if newly_available else want - avail
            rs["status"] = {
                "replicas": want,
                "readyReplicas": avail,
                "availableReplicas": avail,
                "observedGeneration": 1,
            }

    def settle(self, limit: int = 50) -> None:
        for _ in range(limit):
            plan = self.step()
            self.run_pods()
            if not plan.writes and plan.status is None and ro.complete(self.d, self.d["status"]):
                return
        raise AssertionError("no steady state")

    def change_image(self, image: str) -> None:
        self.d["spec"]["template"]["spec"]["containers"][0]["image"] = image
        self.d["metadata"]["generation"] += 1


def conditions(d: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in d["status"].get("conditions", [])}


def test_a_new_deployment_creates_its_first_replicaset() -> None:
    d = deployment(3)
    plan = plan_deployment(d, [], [], T0)
    (w,) = plan.writes
    h = ro.template_hash(d["spec"]["template"])
    assert w.verb == "create"
    rs = w.obj
    assert rs["metadata"]["name"] == f"web-{h}"
    assert rs["spec"]["replicas"] == 3
    assert rs["spec"]["selector"] == {"matchLabels": {"app": "web", "pod-template-hash": h}}
    assert rs["spec"]["template"]["metadata"]["labels"] == {"app": "web", "pod-template-hash": h}
    assert rs["metadata"]["ownerReferences"][0]["uid"] == "d-uid"
    assert rs["metadata"]["annotations"] == {
        "deployment.kubernetes.io/revision": "1",
        "deployment.kubernetes.io/desired-replicas": "3",
        "deployment.kubernetes.io/max-replicas": "4",
    }
    assert [e.message for e in w.events] == [f"Scaled up replica set web-{h} from 0 to 3"]
    assert plan.annotations == {"deployment.kubernetes.io/revision": "1"}
    assert plan.status is not None
    assert {c["type"]: c["reason"] for c in plan.status["conditions"]} == {
        "Progressing": "NewReplicaSetCreated",
        "Available": "MinimumReplicasUnavailable",
    }
    assert plan.status["observedGeneration"] == 1 and "replicas" not in plan.status


def test_a_finished_rollout_reports_what_kubectl_reads() -> None:
    sim = Sim(deployment(3))
    sim.settle()
    st_ = sim.d["status"]
    assert {k: v for k, v in st_.items() if k != "conditions"} == {
        "observedGeneration": 1,
        "replicas": 3,
        "updatedReplicas": 3,
        "readyReplicas": 3,
        "availableReplicas": 3,
    }
    assert conditions(sim.d) == {
        "Available": ("True", "MinimumReplicasAvailable"),
        "Progressing": ("True", "NewReplicaSetAvailable"),
    }
    assert [c["type"] for c in st_["conditions"]] == ["Available", "Progressing"]
    new = sim.new_rs()
    assert new is not None
    prog = ro.get_condition(st_, "Progressing")
    assert (
        prog is not None and prog["message"] == f'ReplicaSet "{new["metadata"]["name"]}" has successfully progressed.'
    )
    assert plan_deployment(sim.d, list(sim.rss.values()), [], sim.now) == DeploymentPlan()  # nothing to do


intstr = st.one_of(st.integers(0, 4), st.integers(0, 100).map(lambda p: f"{p}%"))


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 10), intstr, intstr, st.data())
def test_a_rolling_update_never_exceeds_surge_nor_drops_below_availability(
    replicas: int, surge: int | str, unavailable: int | str, data: st.DataObject
) -> None:
    assume(surge not in (0, "0%") or unavailable not in (0, "0%"))  # validation refuses both zero
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}}
    sim = Sim(deployment(replicas, strategy=strategy))
    sim.settle()
    ceiling = replicas + ro.max_surge(sim.d)
    floor = replicas - ro.max_unavailable(sim.d)
    sim.change_image("fleetnet/echo:2")
    for _ in range(200):
        plan = sim.step()
        assert ro.spec_total(sim.rss.values()) <= ceiling
        sim.run_pods(lambda missing: data.draw(st.integers(1, missing)))
        assert ro.available_total(sim.rss.values()) >= floor
        if not plan.writes and plan.status is None and ro.complete(sim.d, sim.d["status"]):
            break
    else:
        raise AssertionError("the rollout did not finish")
    new = sim.new_rs()
    assert new is not None and ro.replicas(new) == replicas
    assert all(ro.replicas(rs) == 0 for rs in sim.rss.values() if rs is not new)
    assert conditions(sim.d)["Progressing"] == ("True", "NewReplicaSetAvailable")
    assert sim.d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"


def test_scaling_a_deployment_mid_rollout_is_proportional() -> None:
    """kube's TestScale "proportional scaling: 5 -> 10" and "5 -> 3"."""
    for target, expected in ((10, (6, 4)), (3, (2, 1))):
        strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}}
        d = deployment(target, image="v2", strategy=strategy)
        ann = {"deployment.kubernetes.io/desired-replicas": "5", "deployment.kubernetes.io/max-replicas": "5"}
        old = replicaset("web-v1", 3, image="fleetnet/echo", revision=1, created=T0, annotations=ann)
        new = replicaset("web-v2", 2, image="v2", revision=2, created=T0 + 10, annotations=ann)
        plan = plan_deployment(d, [old, new], [], T0 + 20)
        sizes = {w.obj["metadata"]["name"]: w.obj["spec"]["replicas"] for w in plan.writes if w.verb == "update"}
        assert (sizes["web-v1"], sizes["web-v2"]) == expected


def test_a_hash_collision_bumps_the_collision_count_and_retries() -> None:
    d = deployment(2)
    h = ro.template_hash(d["spec"]["template"])
    squatter = replicaset(f"web-{h}", 1, image="something-else", owner="someone-else")
    plan = plan_deployment(d, [], [], T0, {f"web-{h}": squatter})
    assert plan.writes == () and plan.retry
    assert plan.status is not None and plan.status["collisionCount"] == 1
    d["status"] = plan.status
    (w,) = plan_deployment(d, [], [], T0).writes
    assert w.obj["metadata"]["name"] == f"web-{ro.template_hash(d['spec']['template'], 1)}"


def test_old_replicasets_beyond_the_history_limit_are_deleted() -> None:
    d = deployment(1, image="v4", revisionHistoryLimit=1)
    olds = [replicaset(f"web-v{i}", 0, image=f"v{i}", revision=i, created=T0 + i) for i in (1, 2, 3)]
    new = replicaset("web-v4", 1, image="v4", revision=4, created=T0 + 4)
    d["status"] = {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1}
    plan = plan_deployment(d, [*olds, new], [], T0 + 10)
    assert sorted(w.obj["metadata"]["name"] for w in plan.writes if w.verb == "delete") == ["web-v1", "web-v2"]


def test_a_paused_deployment_makes_no_new_replicaset() -> None:
    d = deployment(2, image="v2", paused=True)
    old = replicaset("web-v1", 2, revision=1)
    plan = plan_deployment(d, [old], [], T0)
    assert not [w for w in plan.writes if w.verb == "create"]
    assert plan.status is not None
    prog = ro.get_condition(plan.status, "Progressing")
    assert prog is not None and (prog["status"], prog["reason"], prog["message"]) == (
        "Unknown",
        "DeploymentPaused",
        "Deployment is paused",
    )


def test_a_stuck_rollout_times_out_after_its_progress_deadline() -> None:
    d = deployment(2, image="v2", progressDeadlineSeconds=60)
    old = replicaset("web-v1", 2, revision=1)
    new = replicaset("web-v2", 1, image="v2", revision=2, available=0, created=T0 + 1)
    new["metadata"]["annotations"].update(
        {"deployment.kubernetes.io/desired-replicas": "2", "deployment.kubernetes.io/max-replicas": "3"}
    )
    old["metadata"]["annotations"].update(
        {"deployment.kubernetes.io/desired-replicas": "2", "deployment.kubernetes.io/max-replicas": "3"}
    )
    first = plan_deployment(d, [old, new], [], T0 + 2)
    assert first.status is not None
    d["status"] = first.status
    d["metadata"]["annotations"] = first.annotations
    waiting = plan_deployment(d, [old, new], [], T0 + 10)
    assert waiting.status is None and waiting.requeue_after is not None and 50 < waiting.requeue_after <= 61
    late = plan_deployment(d, [old, new], [], T0 + 100)
    assert late.status is not None
    prog = ro.get_condition(late.status, "Progressing")
    assert prog is not None and (prog["status"], prog["reason"], prog["message"]) == (
        "False",
        "ProgressDeadlineExceeded",
        'ReplicaSet "web-v2" has timed out progressing.',
    )


def test_recreate_waits_for_the_old_pods_before_the_new_replicaset() -> None:
    d = deployment(2, image="v2", strategy={"type": "Recreate"})
    old = replicaset("web-v1", 2, revision=1)
    first = plan_deployment(d, [old], [], T0)
    assert [(w.verb, w.obj["spec"]["replicas"]) for w in first.writes] == [("update", 0)]
    scaled = clone(first.writes[0].obj)
    scaled["status"] = {"replicas": 0}
    still = [pod("web-v1-a", owner="web-v1-uid", deleting=True)]
    assert not [w for w in plan_deployment(d, [scaled], still, T0 + 1).writes if w.verb == "create"]
    (create,) = plan_deployment(d, [scaled], [], T0 + 2).writes
    assert create.verb == "create" and create.obj["spec"]["replicas"] == 2


def test_a_deployment_being_deleted_only_reports_status() -> None:
    d = deployment(2, image="v2")
    d["metadata"]["deletionTimestamp"] = format_time(T0)
    old = replicaset("web-v1", 2, revision=1)
    plan = plan_deployment(d, [old], [], T0)
    assert plan.writes == ()
    assert plan.status is not None and plan.status["replicas"] == 2


def test_a_selector_of_everything_is_refused_with_an_event() -> None:
    d = deployment(2, generation=3)
    d["spec"]["selector"] = {}
    plan = plan_deployment(d, [], [], T0)
    assert plan.writes == ()
    assert [(e.type, e.reason) for e in plan.events] == [("Warning", "SelectingAll")]
    assert plan.status == {"observedGeneration": 3}
