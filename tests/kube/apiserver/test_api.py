"""The API server's REST semantics, asked over HTTPS as any client asks: status codes, Status
reasons and kube-apiserver's messages, optimistic concurrency, selectors, pagination, deletion."""

from __future__ import annotations

import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from fleetnet.kube.client import KubeClient
from fleetnet.kube.resources import REGISTRY, Resource
from fleetnet.kube.status import ApiError
from tests.support.apiserver import TestApiServer, running_apiserver


def res(kind: str) -> Resource:
    r = REGISTRY.by_kind(kind)
    assert r is not None
    return r


PODS, NS, SVC, DEPLOY, CM = res("Pod"), res("Namespace"), res("Service"), res("Deployment"), res("ConfigMap")


def pod(name: str, ns: str = "default", **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": labels or {"app": "x"}},
        "spec": {"containers": [{"name": "c", "image": "fleetnet/echo"}]},
    }


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestApiServer]:
    with running_apiserver(tmp_path_factory.mktemp("api")) as a:
        yield a


@pytest.fixture
def c(api: TestApiServer) -> Iterator[KubeClient]:
    client = KubeClient.from_kubeconfig(api.kubeconfig)
    yield client
    client.close()


def error(fn: Any) -> ApiError:
    with pytest.raises(ApiError) as e:
        fn()
    return e.value


def test_create_get_and_server_set_metadata(c: KubeClient) -> None:
    out = c.create(pod("meta1"))
    md = out["metadata"]
    assert md["uid"] and md["creationTimestamp"].endswith("Z") and int(md["resourceVersion"]) > 0
    assert md["generation"] == 1
    assert out["status"] == {"phase": "Pending", "qosClass": "BestEffort"}
    assert out["spec"]["restartPolicy"] == "Always" and out["spec"]["serviceAccountName"] == "default"
    assert c.get(PODS, "meta1", "default")["metadata"]["uid"] == md["uid"]


def test_not_found_and_already_exists(c: KubeClient) -> None:
    e = error(lambda: c.get(PODS, "missing", "default"))
    assert (e.code, e.reason, e.message) == (404, "NotFound", 'pods "missing" not found')
    assert e.details == {"name": "missing", "kind": "pods"}
    c.create(pod("dup"))
    e = error(lambda: c.create(pod("dup")))
    assert (e.code, e.reason, e.message) == (409, "AlreadyExists", 'pods "dup" already exists')
    e = error(lambda: c.get(DEPLOY, "nope", "default"))
    assert e.message == 'deployments.apps "nope" not found'


def test_stale_resource_version_is_a_conflict(c: KubeClient) -> None:
    first = c.create(pod("cas"))
    newer = dict(first, metadata={**first["metadata"], "labels": {"app": "y"}})
    c.replace(newer)
    stale = dict(first, metadata={**first["metadata"], "labels": {"app": "z"}})
    e = error(lambda: c.replace(stale))
    assert (e.code, e.reason) == (409, "Conflict")
    assert e.message == (
        'Operation cannot be fulfilled on pods "cas": the object has been modified; please apply your '
        "changes to the latest version and try again"
    )
    assert c.get(PODS, "cas", "default")["metadata"]["labels"] == {"app": "y"}


def test_invalid_names_and_fields_list_their_causes(c: KubeClient) -> None:
    bad = pod("Bad_Name")
    e = error(lambda: c.create(bad))
    assert (e.code, e.reason) == (422, "Invalid")
    assert e.message.startswith(
        'Pod "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123'
    )
    assert e.details is not None and e.details["causes"][0]["field"] == "metadata.name"
    d = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d", "namespace": "default"},
        "spec": {
            "replicas": -1,
            "selector": {"matchLabels": {"app": "a"}},
            "template": {"metadata": {"labels": {"app": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}},
        },
    }
    e = error(lambda: c.create(d))
    assert e.message.startswith('Deployment.apps "d" is invalid: [spec.replicas: Invalid value: -1: must be greater')
    fields = [x["field"] for x in (e.details or {})["causes"]]
    assert fields == ["spec.replicas", "spec.template.metadata.labels"]
    with pytest.raises(ApiError):
        c.get(DEPLOY, "d", "default")  # nothing was written


def test_namespaces_must_exist_and_terminating_ones_refuse_content(c: KubeClient) -> None:
    e = error(lambda: c.create(pod("p", "ghost")))
    assert (e.code, e.message) == (404, 'namespaces "ghost" not found')
    c.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "going"}})
    out = c.delete(NS, "going")
    assert out is not None and out["status"]["phase"] == "Terminating"
    e = error(lambda: c.create(pod("late", "going")))
    assert (e.code, e.reason) == (403, "Forbidden")
    assert (
        e.message
        == 'pods "late" is forbidden: unable to create new content in namespace going because it is being terminated'
    )


def test_label_and_field_selectors(c: KubeClient) -> None:
    c.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "sel"}})
    for name, tier in (("s1", "web"), ("s2", "db"), ("s3", "web")):
        c.create(pod(name, "sel", app="shop", tier=tier))
    c.create(pod("s4", "sel", app="other"))

    def names(**kw: str) -> list[str]:
        return [p["metadata"]["name"] for p in c.list(PODS, "sel", **kw)[0]]  # type: ignore[arg-type]

    assert names(label_selector="tier=web") == ["s1", "s3"]
    assert names(label_selector="tier==web,app=shop") == ["s1", "s3"]
    assert names(label_selector="tier!=web") == ["s2", "s4"]
    assert names(label_selector="tier in (db,cache)") == ["s2"]
    assert names(label_selector="tier notin (web)") == ["s2", "s4"]
    assert names(label_selector="tier") == ["s1", "s2", "s3"]
    assert names(label_selector="!tier") == ["s4"]
    assert names(field_selector="metadata.name=s2") == ["s2"]
    assert names(field_selector="metadata.name!=s2,status.phase=Pending") == ["s1", "s3", "s4"]
    e = error(lambda: c.list(PODS, "sel", field_selector="spec.bogus=1"))
    assert e.code == 400 and "spec.bogus" in e.message


def test_limit_and_continue_page_through(c: KubeClient) -> None:
    c.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "pages"}})
    for i in range(7):
        c.create(pod(f"p{i}", "pages"))
    doc = c.request("GET", PODS.path("pages"), params={"limit": 3})
    assert [p["metadata"]["name"] for p in doc["items"]] == ["p0", "p1", "p2"]
    assert doc["metadata"]["remainingItemCount"] == 4 and doc["metadata"]["continue"]
    items, _ = c.list(PODS, "pages", limit=3)  # the client follows continue
    assert len(items) == 7


def test_generate_name(c: KubeClient) -> None:
    out = c.create({**pod(""), "metadata": {"generateName": "gen-", "namespace": "default"}})
    assert out["metadata"]["name"].startswith("gen-") and len(out["metadata"]["name"]) == 9


def test_services_get_cluster_ips_and_keep_them(c: KubeClient) -> None:
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"selector": {"app": "x"}, "ports": [{"port": 80}]},
    }
    out = c.create(svc)
    ip = out["spec"]["clusterIP"]
    assert ip.startswith("10.96.") and ip != "10.96.0.1" and out["spec"]["ports"][0]["targetPort"] == 80
    out2 = c.replace({**svc, "metadata": {**svc["metadata"], "labels": {"a": "b"}}})
    assert out2["spec"]["clusterIP"] == ip  # an update without clusterIP keeps the allocated one
    kube = c.get(SVC, "kubernetes", "default")
    assert kube["spec"]["clusterIP"] == "10.96.0.1"


def test_dry_run_writes_nothing(c: KubeClient) -> None:
    out = c.create(pod("dry"), dry_run=True)
    assert out["metadata"]["name"] == "dry"
    with pytest.raises(ApiError):
        c.get(PODS, "dry", "default")


def test_finalizers_hold_an_object_until_removed(c: KubeClient) -> None:
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "held", "namespace": "default", "finalizers": ["x/y"]},
    }
    c.create(cm)
    marked = c.delete(CM, "held", "default")
    assert marked is not None and marked["metadata"]["deletionTimestamp"]
    live = c.get(CM, "held", "default")
    live["metadata"]["finalizers"] = []
    c.replace(live)
    assert c.get_or_none(CM, "held", "default") is None


def test_scheduled_pods_are_deleted_gracefully(c: KubeClient) -> None:
    p = pod("graceful")
    p["spec"]["nodeName"] = "n1"
    c.create(p)
    out = c.delete(PODS, "graceful", "default")
    assert out is not None and out["metadata"]["deletionGracePeriodSeconds"] == 30
    assert c.get(PODS, "graceful", "default")["metadata"]["deletionTimestamp"]
    c.delete(PODS, "graceful", "default", grace_period=0)  # what the kubelet does once it stopped it
    assert c.get_or_none(PODS, "graceful", "default") is None
    c.create(pod("unscheduled"))
    c.delete(PODS, "unscheduled", "default")
    assert c.get_or_none(PODS, "unscheduled", "default") is None


def test_bodies_over_3_mib_are_refused(c: KubeClient) -> None:
    big = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big", "namespace": "default"}}
    big["data"] = {"x": "a" * (3 * 1024 * 1024 + 10)}
    e = error(lambda: c.create(big))
    assert (e.code, e.reason) == (413, "RequestEntityTooLarge")
    assert c.get_or_none(CM, "big", "default") is None


def test_anonymous_is_401_and_a_service_account_is_held_to_rbac(api: TestApiServer) -> None:
    ctx = ssl.create_default_context(cafile=str(api.root / "ca.crt"))
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"{api.url}/api/v1/pods", context=ctx, timeout=5)
    assert e.value.code == 401
    assert urllib.request.urlopen(f"{api.url}/readyz", context=ctx, timeout=5).read() == b"ok"
    sa = KubeClient.from_kubeconfig(api.token_kubeconfig("sa", "kube-system", "nobody"))
    err = error(lambda: sa.list(PODS, "default"))
    assert (err.code, err.reason) == (403, "Forbidden")
    assert err.message == (
        'pods is forbidden: User "system:serviceaccount:kube-system:nobody" cannot list resource "pods" '
        'in API group "" in the namespace "default"'
    )
    admin = KubeClient.from_kubeconfig(api.kubeconfig)
    admin.create(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "pod-reader"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}],
        }
    )
    admin.create(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "nobody-reads"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "pod-reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "nobody", "namespace": "kube-system"}],
        }
    )
    sa.list(PODS, "default")  # now allowed
    err = error(lambda: sa.create(pod("not-mine")))
    assert err.code == 403 and 'cannot create resource "pods"' in err.message
