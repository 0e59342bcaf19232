"""The names, keys, labels, paths and ports Cilium's own components look for, checked one by one.

Each expectation names the chart template it comes from (``install/kubernetes/cilium/templates/``
of cilium/cilium, read at v1.19.6 unless another version is named) so that a failing test says
where to look. A real cilium-agent, kvstoremesh or ``cilium clustermesh status`` reading these
objects must find exactly these.
"""

from __future__ import annotations

import base64

import yaml

from fleetnet.kvstore.config import parse
from fleetnet.model.chart import render_join
from tests.model.chart import values


def _by_name(kind: str, name: str, version: str = "1.19.2", **overrides: object) -> dict:
    return render_join(values(version, **overrides)).get(kind, name)


def test_tls_secret_names_types_and_keys() -> None:
    # clustermesh-apiserver/tls-provided/{server,admin,remote}-secret.yaml and tls-helm/local-secret.yaml:
    # type kubernetes.io/tls, data ca.crt / tls.crt / tls.key
    for name in (
        "clustermesh-apiserver-server-cert",
        "clustermesh-apiserver-admin-cert",
        "clustermesh-apiserver-remote-cert",
        "clustermesh-apiserver-local-cert",
    ):
        secret = _by_name("Secret", name)
        assert secret["type"] == "kubernetes.io/tls"
        assert set(secret["data"]) == {"ca.crt", "tls.crt", "tls.key"}
        assert secret["metadata"]["namespace"] == "kube-system"


def test_ca_secret() -> None:
    # cilium-ca-secret.yaml: name cilium-ca (helper cilium.ca.setup), no type, data ca.crt + ca.key;
    # 1.19 adds the label cilium.io/helm-template-non-idempotent: "true"
    ca = _by_name("Secret", "cilium-ca")
    assert "type" not in ca
    assert set(ca["data"]) == {"ca.crt", "ca.key"}
    assert ca["metadata"]["labels"]["cilium.io/helm-template-non-idempotent"] == "true"
    assert (
        "cilium.io/helm-template-non-idempotent" not in _by_name("Secret", "cilium-ca", "1.18.3")["metadata"]["labels"]
    )


def test_apiserver_labels_and_selector() -> None:
    # clustermesh-apiserver/deployment.yaml and service.yaml: k8s-app, part-of, name; selector k8s-app
    chart_labels = {
        "k8s-app": "clustermesh-apiserver",
        "app.kubernetes.io/part-of": "cilium",
        "app.kubernetes.io/name": "clustermesh-apiserver",
    }
    for kind in ("Deployment", "Service"):
        obj = _by_name(kind, "clustermesh-apiserver")
        assert chart_labels.items() <= obj["metadata"]["labels"].items()
    dep = _by_name("Deployment", "clustermesh-apiserver")
    assert dep["spec"]["selector"] == {"matchLabels": {"k8s-app": "clustermesh-apiserver"}}
    assert chart_labels.items() <= dep["spec"]["template"]["metadata"]["labels"].items()
    # `cilium clustermesh status` finds the kvstoremesh replicas by k8s-app=clustermesh-apiserver
    assert _by_name("Service", "clustermesh-apiserver")["spec"]["selector"] == {"k8s-app": "clustermesh-apiserver"}


def test_service_port_and_types() -> None:
    # clustermesh-apiserver/service.yaml: port 2379 (targetPort defaults to it: the etcd container port)
    svc = _by_name("Service", "clustermesh-apiserver")
    assert svc["spec"]["ports"] == [{"port": 2379}]
    assert svc["spec"]["type"] == "NodePort"
    etcd = next(c for c in _by_name("Deployment", "clustermesh-apiserver")["spec"]["template"]["spec"]["containers"])
    assert {"name": "etcd", "containerPort": 2379, "protocol": "TCP"} in etcd["ports"]
    assert _by_name("Service", "clustermesh-apiserver", node_port=32379)["spec"]["ports"] == [
        {"port": 2379, "nodePort": 32379}
    ]
    lb = _by_name("Service", "clustermesh-apiserver", service_type="LoadBalancer")
    assert lb["spec"]["type"] == "LoadBalancer"
    assert lb["spec"]["externalTrafficPolicy"] == "Cluster"
    cip = _by_name("Service", "clustermesh-apiserver", service_type="ClusterIP")
    assert "externalTrafficPolicy" not in cip["spec"]  # Kubernetes refuses it on ClusterIP


def test_deployment_containers_mounts_and_ports() -> None:
    # clustermesh-apiserver/deployment.yaml: init etcd-init; etcd, apiserver, kvstoremesh containers
    spec = _by_name("Deployment", "clustermesh-apiserver")["spec"]["template"]["spec"]
    assert [c["name"] for c in spec["initContainers"]] == ["etcd-init"]
    containers = {c["name"]: c for c in spec["containers"]}
    assert list(containers) == ["etcd", "apiserver", "kvstoremesh"]
    assert containers["apiserver"]["image"] == "quay.io/cilium/clustermesh-apiserver:v1.19.2"
    mounts = {c: {m["name"]: m["mountPath"] for m in containers[c]["volumeMounts"]} for c in containers}
    assert mounts["etcd"] == {"etcd-server-secrets": "/var/lib/etcd-secrets", "etcd-data-dir": "/var/run/etcd"}
    assert mounts["apiserver"] == {
        "etcd-admin-client": "/var/lib/cilium/etcd-secrets",
        "etcd-users-config": "/var/lib/cilium/etcd-config",
    }
    assert mounts["kvstoremesh"] == {
        "etcd-admin-client": "/var/lib/cilium/etcd-secrets",
        "kvstoremesh-secrets": "/var/lib/cilium/clustermesh",
    }
    ports = {c: {p["name"]: p["containerPort"] for p in containers[c]["ports"]} for c in containers}
    assert ports == {
        "etcd": {"etcd": 2379, "etcd-metrics": 9963},
        "apiserver": {"apiserv-health": 9880, "apiserv-metrics": 9962},
        "kvstoremesh": {"kvmesh-health": 9881, "kvmesh-metrics": 9964},
    }
    env = {e["name"]: e["valueFrom"]["configMapKeyRef"] for e in containers["apiserver"]["env"]}
    assert env["CLUSTER_NAME"] == {"name": "cilium-config", "key": "cluster-name"}
    assert env["CLUSTER_ID"] == {"name": "cilium-config", "key": "cluster-id", "optional": True}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["etcd-users-config"]["configMap"]["name"] == "clustermesh-remote-users"
    sources = [s["secret"]["name"] for s in volumes["kvstoremesh-secrets"]["projected"]["sources"]]
    assert sources == ["cilium-kvstoremesh", "clustermesh-apiserver-remote-cert"]
    assert volumes["etcd-server-secrets"]["projected"]["defaultMode"] == 0o400
    assert spec["serviceAccountName"] == "clustermesh-apiserver"


def test_apiserver_and_kvstoremesh_args() -> None:
    # deployment.yaml args with tls.authMode=cluster and the default metrics
    spec = _by_name("Deployment", "clustermesh-apiserver", max_connected_clusters=511)["spec"]["template"]["spec"]
    args = {c["name"]: c["args"] for c in spec["containers"]}
    assert args["apiserver"][0] == "clustermesh"
    assert "--max-connected-clusters=511" in args["apiserver"]
    assert "--cluster-users-config-path=/var/lib/cilium/etcd-config/users.yaml" in args["apiserver"]
    assert args["kvstoremesh"][0] == "kvstoremesh"
    assert "--clustermesh-config=/var/lib/cilium/clustermesh" in args["kvstoremesh"]
    assert "--clustermesh-cache-ttl=30s" in args["kvstoremesh"]  # 1.19
    old = _by_name("Deployment", "clustermesh-apiserver", "1.18.3")["spec"]["template"]["spec"]["containers"]
    assert not any(a.startswith("--clustermesh-cache-ttl") for a in old[2]["args"])


def test_clustermesh_secret_without_kvstoremesh() -> None:
    # clustermesh-config/clustermesh-secret.yaml: one key per peer + <peer>.etcd-client{.key,.crt,-ca.crt}
    secret = _by_name("Secret", "cilium-clustermesh", kvstoremesh=False)
    assert set(secret["data"]) == {"c2", "c3", "c3.etcd-client.key", "c3.etcd-client.crt", "c3.etcd-client-ca.crt"}
    c2 = parse(base64.b64decode(secret["data"]["c2"]).decode())
    assert c2.endpoints == ("https://10.0.0.12:32001",)
    assert c2.trusted_ca_file == "/var/lib/cilium/clustermesh/common-etcd-client-ca.crt"
    assert c2.cert_file == "/var/lib/cilium/clustermesh/common-etcd-client.crt"
    assert c2.key_file == "/var/lib/cilium/clustermesh/common-etcd-client.key"
    c3 = parse(base64.b64decode(secret["data"]["c3"]).decode())
    assert c3.trusted_ca_file == "/var/lib/cilium/clustermesh/c3.etcd-client-ca.crt"
    assert c3.cert_file == "/var/lib/cilium/clustermesh/c3.etcd-client.crt"


def test_clustermesh_secret_with_kvstoremesh_points_at_the_local_cache() -> None:
    # clustermesh-secret.yaml $override: https://clustermesh-apiserver.<ns>.svc:2379 with local- files (>= 1.17)
    secret = _by_name("Secret", "cilium-clustermesh")
    assert set(secret["data"]) == {"c2", "c3"}
    for key in ("c2", "c3"):
        cfg = parse(base64.b64decode(secret["data"][key]).decode())
        assert cfg.endpoints == ("https://clustermesh-apiserver.kube-system.svc:2379",)
        assert cfg.trusted_ca_file == "/var/lib/cilium/clustermesh/local-etcd-client-ca.crt"
        assert cfg.key_file == "/var/lib/cilium/clustermesh/local-etcd-client.key"
    # 1.16 (clustermesh-config/_helpers.tpl at v1.16.6): the common- files
    old = _by_name("Secret", "cilium-clustermesh", "1.16.9")
    cfg = parse(base64.b64decode(old["data"]["c2"]).decode())
    assert cfg.cert_file == "/var/lib/cilium/clustermesh/common-etcd-client.crt"
    # clustermesh-config/kvstoremesh-secret.yaml: the peers themselves
    kvm = _by_name("Secret", "cilium-kvstoremesh")
    assert set(kvm["data"]) == {"c2", "c3", "c3.etcd-client.key", "c3.etcd-client.crt", "c3.etcd-client-ca.crt"}
    c3 = parse(base64.b64decode(kvm["data"]["c3"]).decode())
    assert c3.endpoints == ("https://10.0.0.13:32002", "https://[fd00::13]:32002")


def test_hostname_addressing_uses_the_mesh_domain() -> None:
    # _helpers.tpl: https://<name>.<clustermesh.config.domain>:<port> when clusters[].ips is given
    kvm = _by_name("Secret", "cilium-kvstoremesh", peer_addressing="hostname")
    cfg = parse(base64.b64decode(kvm["data"]["c2"]).decode())
    assert cfg.endpoints == ("https://c2.mesh.cilium.io:32001",)
    spec = _by_name("Deployment", "clustermesh-apiserver", peer_addressing="hostname")["spec"]["template"]["spec"]
    assert {"ip": "10.0.0.12", "hostnames": ["c2.mesh.cilium.io"]} in spec["hostAliases"]


def test_users_config_map() -> None:
    # clustermesh-apiserver/users-configmap.yaml: users.yaml with remote-<peer>, role remote
    cm = _by_name("ConfigMap", "clustermesh-remote-users")
    assert cm["metadata"]["labels"]["app.kubernetes.io/part-of"] == "cilium"
    assert yaml.safe_load(cm["data"]["users.yaml"]) == {
        "users": [{"name": "remote-c2", "role": "remote"}, {"name": "remote-c3", "role": "remote"}]
    }


def test_rbac() -> None:
    # clustermesh-apiserver/clusterrole.yaml, clusterrolebinding.yaml, serviceaccount.yaml
    role = _by_name("ClusterRole", "clustermesh-apiserver")
    assert "namespace" not in role["metadata"]
    cilium_rule = role["rules"][0]
    assert cilium_rule["apiGroups"] == ["cilium.io"]
    assert set(cilium_rule["resources"]) == {
        "ciliumidentities",
        "ciliumendpoints",
        "ciliumnodes",
        "ciliumendpointslices",
    }
    binding = _by_name("ClusterRoleBinding", "clustermesh-apiserver")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "clustermesh-apiserver",
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "clustermesh-apiserver", "namespace": "kube-system"}
    ]
    assert _by_name("ServiceAccount", "clustermesh-apiserver")["metadata"]["namespace"] == "kube-system"


def test_metrics_service() -> None:
    # clustermesh-apiserver/metrics-service.yaml: headless, component metrics
    svc = _by_name("Service", "clustermesh-apiserver-metrics")
    assert svc["spec"]["clusterIP"] == "None"
    assert svc["metadata"]["labels"]["app.kubernetes.io/component"] == "metrics"
    assert [p["name"] for p in svc["spec"]["ports"]] == ["apiserv-metrics", "kvmesh-metrics", "etcd-metrics"]


def test_every_object_carries_fleetnet_label_and_network_annotation() -> None:
    for obj in render_join(values()).objects:
        meta = obj["metadata"]
        assert meta["annotations"]["fleetnet.io/network"] == "blue"
        if obj["kind"] == "ConfigMap" and meta["name"] == "cilium-config":
            assert "labels" not in meta  # the install's object: its own managed-by stays
        else:
            assert meta["labels"]["app.kubernetes.io/managed-by"] == "fleetnet"
