"""Manifest parsing: every kind, the to_dict round trip, and one test per refusal rule."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from fleetnet.errors import InvalidInput
from fleetnet.model.kube import (
    Container,
    ContainerPort,
    Deployment,
    Endpoint,
    EndpointPort,
    EndpointSlice,
    FrozenMap,
    Namespace,
    ObjectMeta,
    Pod,
    PodSpec,
    PodStatus,
    PodTemplate,
    PolicyObject,
    Service,
    ServicePort,
    is_iana_svc_name,
    object_from_dict,
    object_key,
    parse_manifests,
)

DEMO = """
apiVersion: v1
kind: Namespace
metadata:
  name: demo
  annotations:
    clustermesh.cilium.io/global: "true"
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: echo
  namespace: demo
  labels: {app: echo}
spec:
  replicas: 3
  selector:
    matchLabels: {app: echo}
  template:
    metadata:
      labels: {app: echo, tier: backend}
    spec:
      containers:
      - name: echo
        image: fleetnet/echo
        args: ["--greeting", "hi"]
        ports:
        - {containerPort: 8080, name: http}
        - {containerPort: 5353, protocol: UDP}
---
apiVersion: v1
kind: Service
metadata:
  name: echo
  namespace: demo
  annotations:
    service.cilium.io/global: "true"
    service.cilium.io/affinity: local
spec:
  selector: {app: echo}
  ports:
  - {name: http, port: 80, targetPort: http}
  - {name: dns, port: 53, protocol: UDP, targetPort: 5353}
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  nodeName: node-1
  containers: [{name: client, image: "fleetnet/client:latest"}]
---
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: allow-client, namespace: demo}
spec:
  endpointSelector: {matchLabels: {app: echo}}
  ingress: [{fromEndpoints: [{matchLabels: {app: client}}]}]
---
apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata: {name: deny-all}
specs:
- endpointSelector: {}
  ingressDeny: [{}]
"""


def test_parses_every_kind() -> None:
    objs = parse_manifests(DEMO, "demo.yaml")
    assert [object_key(o) for o in objs] == [
        ("Namespace", "", "demo"),
        ("Deployment", "demo", "echo"),
        ("Service", "demo", "echo"),
        ("Pod", "default", "client"),
        ("CiliumNetworkPolicy", "demo", "allow-client"),
        ("CiliumClusterwideNetworkPolicy", "", "deny-all"),
    ]
    ns, deploy, svc, pod, cnp, ccnp = objs
    assert isinstance(ns, Namespace) and ns.meta.annotations == {"clustermesh.cilium.io/global": "true"}
    assert isinstance(deploy, Deployment)
    assert deploy.replicas == 3 and deploy.selector == {"app": "echo"}
    assert deploy.template.labels == {"app": "echo", "tier": "backend"}
    assert deploy.template.spec.containers == (
        Container(
            "echo",
            "fleetnet/echo",
            ("--greeting", "hi"),
            (ContainerPort(8080, "TCP", "http"), ContainerPort(5353, "UDP", None)),
        ),
    )
    assert isinstance(svc, Service)
    assert svc.ports == (ServicePort("http", 80, "http", "TCP"), ServicePort("dns", 53, 5353, "UDP"))
    assert svc.cluster_ip is None and svc.type == "ClusterIP" and not svc.headless
    assert isinstance(pod, Pod)
    assert pod.spec.node_name == "node-1" and pod.status is None and pod.spec.containers[0].program == "client"
    assert isinstance(cnp, PolicyObject) and cnp.spec["endpointSelector"] == {"matchLabels": {"app": "echo"}}
    assert isinstance(ccnp, PolicyObject) and ccnp.meta.namespace is None and len(ccnp.rules) == 1


def test_to_dict_round_trips_through_yaml() -> None:
    objs = parse_manifests(DEMO, "demo.yaml")
    again = parse_manifests(yaml.safe_dump_all([o.to_dict() for o in objs]), "again.yaml")
    assert again == objs


def test_to_dict_is_ordinary_kubernetes_json() -> None:
    svc = Service(
        ObjectMeta("web", "default", labels={"app": "web"}),
        selector={"app": "web"},
        ports=(ServicePort("", 80, 8080),),
        cluster_ip="10.96.0.10",
    )
    assert svc.to_dict() == {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "type": "ClusterIP",
            "clusterIP": "10.96.0.10",
            "clusterIPs": ["10.96.0.10"],
            "ports": [{"port": 80, "protocol": "TCP", "targetPort": 8080}],
            "selector": {"app": "web"},
        },
    }


def test_stored_objects_keep_status_and_endpointslices() -> None:
    pod = Pod(
        ObjectMeta("p", "default", labels={"app": "a"}),
        PodSpec((Container("c", "fleetnet/echo"),), node_name="n1"),
        PodStatus("Running", pod_ip="10.244.1.5", host_ip="172.18.0.2", ready=True),
    )
    assert object_from_dict(pod.to_dict()) == pod
    eps = EndpointSlice(
        ObjectMeta("web-bcdfg", "default", labels={"kubernetes.io/service-name": "web"}),
        endpoints=(Endpoint(("10.244.1.5",), node_name="n1", target_pod="p"),),
        ports=(EndpointPort("http", 8080, "TCP"),),
    )
    assert object_from_dict(eps.to_dict()) == eps
    empty = EndpointSlice(ObjectMeta("web-xyz", "default", labels={"kubernetes.io/service-name": "web"}))
    assert empty.to_dict()["ports"] is None
    assert object_from_dict(empty.to_dict()) == empty


def test_user_manifests_cannot_carry_endpointslices_or_status() -> None:
    eps = EndpointSlice(ObjectMeta("web-xyz", "default"))
    with pytest.raises(InvalidInput, match="kind 'EndpointSlice' is not supported"):
        parse_manifests(yaml.safe_dump(eps.to_dict()), "f.yaml")
    pod = Pod(ObjectMeta("p", "default"), PodSpec((Container("c", "fleetnet/echo"),)), PodStatus("Running"))
    (parsed,) = parse_manifests(yaml.safe_dump(pod.to_dict()), "f.yaml")
    assert isinstance(parsed, Pod) and parsed.status is None


def test_kubectl_get_output_applies_unchanged() -> None:
    text = """
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: default
  uid: 0b5c1a8e-8f27-4ea6-9b7e-3a5a1b2c3d4e
  resourceVersion: "1234"
  creationTimestamp: "2024-01-01T00:00:00Z"
  managedFields: []
spec:
  clusterIP: 10.96.0.10
  clusterIPs: [10.96.0.10]
  internalTrafficPolicy: Cluster
  ipFamilies: [IPv4]
  ipFamilyPolicy: SingleStack
  ports: [{name: http, port: 80, protocol: TCP, targetPort: 8080}]
  selector: {app: web}
  sessionAffinity: None
  type: ClusterIP
status:
  loadBalancer: {}
"""
    (svc,) = parse_manifests(text, "get.yaml")
    assert isinstance(svc, Service) and svc.cluster_ip == "10.96.0.10"


def test_list_kind_and_empty_documents() -> None:
    text = "---\n---\napiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Namespace, metadata: {name: a}}\n"
    assert [object_key(o) for o in parse_manifests(text, "l.yaml")] == [("Namespace", "", "a")]


def test_namespace_flag() -> None:
    text = "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: [{port: 80}]}\n"
    (svc,) = parse_manifests(text, "f.yaml", namespace="team")
    assert svc.meta.namespace == "team"
    other = "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: x}\nspec: {ports: [{port: 80}]}\n"
    with pytest.raises(InvalidInput, match="does not match the namespace 'team'"):
        parse_manifests(other, "f.yaml", namespace="team")


def test_headless_service() -> None:
    text = "apiVersion: v1\nkind: Service\nmetadata: {name: db}\nspec: {clusterIP: None, selector: {app: db}}\n"
    (svc,) = parse_manifests(text, "f.yaml")
    assert isinstance(svc, Service) and svc.headless and svc.ports == ()


def test_frozen_values_are_hashable() -> None:
    (_, deploy, svc, *_rest) = parse_manifests(DEMO, "demo.yaml")
    assert hash(deploy) == hash(deploy) and hash(svc) == hash(svc)
    assert FrozenMap({"a": "1"}) == {"a": "1"} and hash(FrozenMap({"a": "1"})) == hash(FrozenMap([("a", "1")]))
    assert ObjectMeta("x", labels={"a": "b"}).labels == FrozenMap({"a": "b"})


def _pod(spec: str = "containers: [{name: c, image: fleetnet/echo}]", meta: str = "name: p") -> str:
    return f"apiVersion: v1\nkind: Pod\nmetadata: {{{meta}}}\nspec: {{{spec}}}\n"


def _svc(spec: str, name: str = "web") -> str:
    return f"apiVersion: v1\nkind: Service\nmetadata: {{name: {name}}}\nspec: {{{spec}}}\n"


def _deploy(spec: str) -> str:
    return f"apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: d}}\nspec: {{{spec}}}\n"


TEMPLATE = "template: {metadata: {labels: {app: a}}, spec: {containers: [{name: c, image: fleetnet/echo}]}}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: [", "f.yaml: malformed YAML at line 2, column 1"),
        ("key: value\n  bad: indent\n", "f.yaml: malformed YAML at line 2"),
        ("- 1\n- 2\n", "f.yaml, document 1: must be a mapping with apiVersion and kind, not a list."),
        ("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n", "kind 'Secret' is not supported; fleetnet accepts"),
        (
            "apiVersion: v1\nkind: Deployment\n",
            "(Deployment): apiVersion is 'v1', but Deployment is served as apps/v1.",
        ),
        ("kind: Pod\n", "f.yaml, document 1: apiVersion is required."),
        (_pod(meta="labels: {a: b}"), "(Pod): metadata.name is required."),
        (_pod(meta="name: Bad_Name"), "(Pod): metadata.name 'Bad_Name' is not a valid name"),
        (_svc("ports: [{port: 80}]", name="1web"), "(Service): metadata.name '1web' is not a valid name"),
        (_pod(meta="name: p, namespace: NS"), "metadata.namespace 'NS' is not a valid namespace name"),
        (_pod(meta="name: p, uidd: x"), "(Pod): metadata.uidd is not a supported field"),
        (_pod(meta="name: p, labels: {'a/b/c': x}"), "metadata.labels key 'a/b/c' has prefix 'a/b'"),
        (_pod(meta="name: p, labels: {a: 'x y'}"), "metadata.labels.a value 'x y' must be empty or at most 63"),
        (
            _pod(meta="name: p, annotations: {a: 1}"),
            "metadata.annotations.a must be a string, not a number (quote it).",
        ),
        ("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nfoo: 1\n", "(Pod default/p): foo is not a supported field"),
        (_pod("containers: []"), "(Pod default/p): spec.containers must list at least one container."),
        (_pod("containers: [{name: c, image: nginx}]"), "spec.containers[0].image 'nginx' is not supported; use"),
        (_pod("containers: [{name: c, image: fleetnet/echo, env: []}]"), "spec.containers[0].env is not a supported"),
        (_pod("containers: [{name: c, image: fleetnet/echo, args: [1]}]"), "spec.containers[0].args[0] must be a str"),
        (
            _pod("containers: [{name: c, image: fleetnet/echo, ports: [{containerPort: 0}]}]"),
            "spec.containers[0].ports[0].containerPort must be an integer from 1 to 65535, got 0.",
        ),
        (
            _pod("containers: [{name: c, image: fleetnet/echo, ports: [{containerPort: 80, protocol: ICMP}]}]"),
            "spec.containers[0].ports[0].protocol must be one of TCP, UDP, SCTP, got 'ICMP'.",
        ),
        (
            _pod("containers: [{name: c, image: fleetnet/echo, ports: [{containerPort: 80, name: HTTP}]}]"),
            "spec.containers[0].ports[0].name 'HTTP' is not a valid port name",
        ),
        (
            _pod("containers: [{name: c, image: fleetnet/echo}, {name: c, image: fleetnet/client}]"),
            "spec.containers[1].name 'c' is used twice.",
        ),
        (_pod("containers: [{name: c, image: fleetnet/echo}], serviceAccountName: admin"), "serviceAccountName is"),
        (
            _svc("ports: [{port: 70000}]"),
            "(Service default/web): spec.ports[0].port must be an integer from 1 to 65535",
        ),
        (_svc("ports: [{port: '80'}]"), "spec.ports[0].port must be an integer, not a string."),
        (_svc("type: NodePort, ports: [{port: 80}]"), "spec.type is 'NodePort', but only ClusterIP Services"),
        (_svc("type: LoadBalancer, ports: [{port: 80}]"), "spec.type is 'LoadBalancer'"),
        (_svc("ports: [{port: 80, nodePort: 30080}]"), "spec.ports[0].nodePort is not supported"),
        (_svc("selector: {a: b}"), "spec.ports must list at least one port"),
        (_svc("ports: [{port: 80}, {port: 81}]"), "spec.ports[0].name is required when a Service has more than one"),
        (_svc("ports: [{name: a, port: 80}, {name: a, port: 81}]"), "spec.ports[1].name 'a' is used twice."),
        (_svc("ports: [{name: a, port: 80}, {name: b, port: 80}]"), "spec.ports[1].port 80/TCP is used twice."),
        (_svc("ports: [{port: 80, targetPort: '8080'}]"), "spec.ports[0].targetPort '8080' is neither a port number"),
        (_svc("ports: [{port: 80, targetPort: 0}]"), "spec.ports[0].targetPort must be an integer from 1 to 65535"),
        (_svc("clusterIP: 10.96.0.300, ports: [{port: 80}]"), "spec.clusterIP '10.96.0.300' is neither an IPv4"),
        (_svc("sessionAffinity: ClientIP, ports: [{port: 80}]"), "spec.sessionAffinity is 'ClientIP', but fleetnet"),
        (_deploy(f"replicas: -1, selector: {{matchLabels: {{app: a}}}}, {TEMPLATE}"), "spec.replicas must be an int"),
        (_deploy(f"replicas: 1.5, selector: {{matchLabels: {{app: a}}}}, {TEMPLATE}"), "spec.replicas must be an int"),
        (_deploy(f"selector: {{matchLabels: {{app: b}}}}, {TEMPLATE}"), "does not match spec.template.metadata.labels"),
        (_deploy(TEMPLATE), "(Deployment default/d): spec.selector is required."),
        (_deploy(f"selector: {{matchLabels: {{}}}}, {TEMPLATE}"), "spec.selector.matchLabels must select at least"),
        (
            _deploy(f"selector: {{matchExpressions: [{{key: app, operator: Exists}}]}}, {TEMPLATE}"),
            "spec.selector.matchExpressions is not supported",
        ),
        (
            _deploy(
                "selector: {matchLabels: {app: a}}, template: {metadata: {labels: {app: a}}, "
                "spec: {nodeName: n1, containers: [{name: c, image: fleetnet/echo}]}}"
            ),
            "spec.template.spec.nodeName is not supported in a Deployment",
        ),
        ("apiVersion: v1\nkind: Namespace\nmetadata: {name: a, namespace: b}\n", "metadata.namespace must not be set"),
        ("apiVersion: v1\nkind: Namespace\nmetadata: {name: a.b}\n", "(Namespace): metadata.name 'a.b' is not"),
    ],
)
def test_refusals_name_document_and_field(text: str, message: str) -> None:
    with pytest.raises(InvalidInput) as err:
        parse_manifests(text, "f.yaml")
    assert message in str(err.value)
    assert str(err.value).count("\n") == 0 and str(err.value).endswith(".")


def test_first_problem_wins_and_names_the_document_index() -> None:
    good = "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n"
    bad = "apiVersion: v1\nkind: Namespace\nmetadata: {name: A}\n"
    with pytest.raises(InvalidInput, match=r"^f.yaml, document 3 \(Namespace\): metadata.name 'A'"):
        parse_manifests("\n---\n".join([good, good, bad, "oops: ["]), "f.yaml")


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", max_size=20))
def test_iana_svc_name_rule(name: str) -> None:
    expected = (
        0 < len(name) <= 15
        and any(c.isalpha() for c in name)
        and "--" not in name
        and not name.startswith("-")
        and not name.endswith("-")
    )
    assert is_iana_svc_name(name) == expected


def test_deployment_template_value() -> None:
    (_, deploy, *_rest) = parse_manifests(DEMO, "demo.yaml")
    assert isinstance(deploy, Deployment)
    assert isinstance(deploy.template, PodTemplate)
    assert deploy.to_dict()["spec"]["template"]["metadata"] == {"labels": {"app": "echo", "tier": "backend"}}
