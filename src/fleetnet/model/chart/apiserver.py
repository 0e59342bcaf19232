"""The clustermesh-apiserver workload: its Deployment (etcd, apiserver and kvstoremesh containers).

Rendered as ``install/kubernetes/cilium/templates/clustermesh-apiserver/deployment.yaml`` renders
it with the chart's default values, ``clustermesh.useAPIServer=true``, ``clustermesh.config.enabled=true``,
``tls.authMode=cluster`` (each peer reads this member's etcd as ``remote-<peer>``, one CA per
network), ``identityAllocationMode=crd`` and ``kvstoreMode=internal``; fleetnet's values come from
``ChartValues``. What changes between minors:

- 1.16/1.17: etcd listens on ``https://127.0.0.1:2379,https://[$(HOSTNAME_IP)]:2379`` and
  advertises the pod IP (env ``HOSTNAME_IP``); the apiserver gets ``--enable-external-workloads``.
  1.18 listens on ``0.0.0.0``, advertises ``localhost``, drops external workloads, adds the
  ``kubectl.kubernetes.io/default-container`` pod annotation, ``--enable-heartbeat=false`` for
  kvstoremesh and ``--enable-cilium-endpoint-slice`` when CES is on; 1.19 adds
  ``--enable-grpc-gateway=false`` to etcd and ``--clustermesh-cache-ttl`` to kvstoremesh.
"""

from __future__ import annotations

from typing import Any

from fleetnet.model.chart.config import CLUSTER_ID, CLUSTER_NAME, config_checksum, go_duration
from fleetnet.model.chart.inputs import ChartValues
from fleetnet.model.chart.meta import (
    ADMIN_CERT_SECRET,
    ANNOTATION_CONFIG_CHECKSUM,
    APISERVER,
    APISERVER_LABELS,
    APISERVER_SELECTOR,
    CLUSTERMESH_CONFIG_DIR,
    CONFIG_MAP,
    KVSTOREMESH_SECRET,
    LABEL_K8S_APP,
    LABEL_NAME,
    LABEL_PART_OF,
    REMOTE_CERT_SECRET,
    SERVER_CERT_SECRET,
    TLS_CA,
    TLS_CERT,
    TLS_KEY,
    USERS_CONFIG_MAP,
    metadata,
)
from fleetnet.model.chart.secrets import ETCD_PORT, peer_hostname

# values.yaml defaults (clustermesh.apiserver.*), the same in 1.16-1.19
HEALTH_PORT = 9880
KVSTOREMESH_HEALTH_PORT = 9881
METRICS_PORT = 9962
ETCD_METRICS_PORT = 9963
KVSTOREMESH_METRICS_PORT = 9964
PRIORITY_CLASS = "system-cluster-critical"
TERMINATION_GRACE_SECONDS = 30
SECURITY_CONTEXT: dict[str, Any] = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
POD_SECURITY_CONTEXT: dict[str, Any] = {"runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532, "fsGroup": 65532}
ROLLING_UPDATE: dict[str, Any] = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
NODE_SELECTOR = {"kubernetes.io/os": "linux"}
AFFINITY: dict[str, Any] = {
    "podAntiAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {
                "weight": 100,
                "podAffinityTerm": {
                    "labelSelector": {"matchLabels": dict(APISERVER_SELECTOR)},
                    "topologyKey": "kubernetes.io/hostname",
                },
            }
        ]
    }
}
READ_ONLY_MODE = 0o400  # the chart's "defaultMode: 0400"
ETCD_DATA_DIR = "/var/run/etcd"
ETCD_SECRETS_DIR = "/var/lib/etcd-secrets"
ADMIN_SECRETS_DIR = "/var/lib/cilium/etcd-secrets"
USERS_DIR = "/var/lib/cilium/etcd-config"
ETCD_CONFIG = "--kvstore-opt=etcd.config=/var/lib/cilium/etcd-config.yaml"  # baked into the image
CONTAINERS = ("etcd", "apiserver", "kvstoremesh")


def _image(values: ChartValues) -> str:
    return f"{values.image_repository}:{values.cilium_version.tag}"


def _config_env(name: str, key: str, *, optional: bool = False) -> dict[str, Any]:
    ref: dict[str, Any] = {"name": CONFIG_MAP, "key": key}
    if optional:
        ref["optional"] = True
    return {"name": name, "valueFrom": {"configMapKeyRef": ref}}


def _field_env(name: str, path: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}}


def _port(name: str, port: int) -> dict[str, Any]:
    return {"name": name, "containerPort": port, "protocol": "TCP"}


def _mount(name: str, path: str, read_only: bool = True) -> dict[str, Any]:
    mount: dict[str, Any] = {"name": name, "mountPath": path}
    if read_only:
        mount["readOnly"] = True
    return mount


def _container(values: ChartValues, name: str, command: str, args: list[str]) -> dict[str, Any]:
    return {
        "name": name,
        "image": _image(values),
        "imagePullPolicy": "IfNotPresent",
        "command": [command],
        "args": args,
    }


def _etcd_init(values: ChartValues) -> dict[str, Any]:
    c = _container(
        values,
        "etcd-init",
        "/usr/bin/clustermesh-apiserver",
        [
            "etcdinit",
            "--etcd-cluster-name=clustermesh-apiserver",
            "--etcd-initial-cluster-token=$(INITIAL_CLUSTER_TOKEN)",
            f"--etcd-data-dir={ETCD_DATA_DIR}",
        ],
    )
    c["env"] = [
        _config_env("CILIUM_CLUSTER_NAME", CLUSTER_NAME),
        _field_env("INITIAL_CLUSTER_TOKEN", "metadata.uid"),
    ]
    c["securityContext"] = SECURITY_CONTEXT
    c["volumeMounts"] = [_mount("etcd-data-dir", ETCD_DATA_DIR, read_only=False)]
    c["terminationMessagePolicy"] = "FallbackToLogsOnError"
    return c


def _etcd(values: ChartValues) -> dict[str, Any]:
    v = values.cilium_version
    args = [
        f"--data-dir={ETCD_DATA_DIR}",
        "--name=clustermesh-apiserver",
        "--client-cert-auth",
        f"--trusted-ca-file={ETCD_SECRETS_DIR}/{TLS_CA}",
        f"--cert-file={ETCD_SECRETS_DIR}/{TLS_CERT}",
        f"--key-file={ETCD_SECRETS_DIR}/{TLS_KEY}",
    ]
    if v.at_least(18):
        args += ["--listen-client-urls=https://0.0.0.0:2379", "--advertise-client-urls=https://localhost:2379"]
    else:
        args += [
            "--listen-client-urls=https://127.0.0.1:2379,https://[$(HOSTNAME_IP)]:2379",
            "--advertise-client-urls=https://[$(HOSTNAME_IP)]:2379",
        ]
    args += ["--initial-cluster-token=$(INITIAL_CLUSTER_TOKEN)", "--auto-compaction-retention=1"]
    if v.at_least(19):
        args.append("--enable-grpc-gateway=false")
    metrics_host = "0.0.0.0" if v.at_least(18) else "[$(HOSTNAME_IP)]"
    args += [f"--listen-metrics-urls=http://{metrics_host}:{ETCD_METRICS_PORT}", "--metrics=basic"]
    c = _container(values, "etcd", "/usr/bin/etcd", args)
    env = [{"name": "ETCDCTL_API", "value": "3"}]
    if not v.at_least(18):
        env.append(_field_env("HOSTNAME_IP", "status.podIP"))
    env.append(_field_env("INITIAL_CLUSTER_TOKEN", "metadata.uid"))
    c["env"] = env
    c["ports"] = [_port("etcd", ETCD_PORT), _port("etcd-metrics", ETCD_METRICS_PORT)]
    c["volumeMounts"] = [_mount("etcd-server-secrets", ETCD_SECRETS_DIR), _mount("etcd-data-dir", ETCD_DATA_DIR, False)]
    c["terminationMessagePolicy"] = "FallbackToLogsOnError"
    c["securityContext"] = SECURITY_CONTEXT
    return c


def _apiserver(values: ChartValues) -> dict[str, Any]:
    v = values.cilium_version
    args = [
        "clustermesh",
        "--cluster-name=$(CLUSTER_NAME)",
        "--cluster-id=$(CLUSTER_ID)",
        ETCD_CONFIG,
        "--kvstore-opt=etcd.qps=20",
        "--kvstore-opt=etcd.bootstrapQps=10000",
        f"--max-connected-clusters={values.max_connected_clusters}",
        f"--health-port={HEALTH_PORT}",
        "--cluster-users-enabled",
        f"--cluster-users-config-path={USERS_DIR}/users.yaml",
    ]
    if not v.at_least(18):
        args.append("--enable-external-workloads=false")
    args += [f"--prometheus-serve-addr=:{METRICS_PORT}", "--controller-group-metrics=all"]
    if v.at_least(18) and values.cilium_endpoint_slice:
        args.append("--enable-cilium-endpoint-slice")
    c = _container(values, "apiserver", "/usr/bin/clustermesh-apiserver", args)
    c["env"] = [
        _config_env("CLUSTER_NAME", CLUSTER_NAME),
        _config_env("CLUSTER_ID", CLUSTER_ID, optional=True),
        _config_env("ENABLE_K8S_ENDPOINT_SLICE", "enable-k8s-endpoint-slice", optional=True),
    ]
    c["readinessProbe"] = {"httpGet": {"path": "/readyz", "port": "apiserv-health"}}
    c["ports"] = [_port("apiserv-health", HEALTH_PORT), _port("apiserv-metrics", METRICS_PORT)]
    c["volumeMounts"] = [_mount("etcd-admin-client", ADMIN_SECRETS_DIR), _mount("etcd-users-config", USERS_DIR)]
    c["terminationMessagePolicy"] = "FallbackToLogsOnError"
    c["securityContext"] = SECURITY_CONTEXT
    return c


def _kvstoremesh(values: ChartValues) -> dict[str, Any]:
    v = values.cilium_version
    args = [
        "kvstoremesh",
        "--cluster-name=$(CLUSTER_NAME)",
        "--cluster-id=$(CLUSTER_ID)",
        ETCD_CONFIG,
        "--kvstore-opt=etcd.qps=100",
        "--kvstore-opt=etcd.bootstrapQps=10000",
        "--kvstore-opt=etcd.maxInflight=10",
        f"--clustermesh-config={CLUSTERMESH_CONFIG_DIR}",
        f"--max-connected-clusters={values.max_connected_clusters}",
    ]
    if v.at_least(19):
        args.append(f"--clustermesh-cache-ttl={go_duration(values.cache_ttl_seconds)}")
    args += [
        f"--health-port={KVSTOREMESH_HEALTH_PORT}",
        f"--prometheus-serve-addr=:{KVSTOREMESH_METRICS_PORT}",
        "--controller-group-metrics=all",
    ]
    if v.at_least(18):
        args.append("--enable-heartbeat=false")  # identities come from CRDs: the apiserver writes the heartbeat
    c = _container(values, "kvstoremesh", "/usr/bin/clustermesh-apiserver", args)
    c["readinessProbe"] = {"httpGet": {"path": "/readyz", "port": "kvmesh-health"}}
    c["env"] = [_config_env("CLUSTER_NAME", CLUSTER_NAME), _config_env("CLUSTER_ID", CLUSTER_ID)]
    c["ports"] = [_port("kvmesh-health", KVSTOREMESH_HEALTH_PORT), _port("kvmesh-metrics", KVSTOREMESH_METRICS_PORT)]
    c["volumeMounts"] = [
        _mount("etcd-admin-client", ADMIN_SECRETS_DIR),
        _mount("kvstoremesh-secrets", CLUSTERMESH_CONFIG_DIR),
    ]
    c["terminationMessagePolicy"] = "FallbackToLogsOnError"
    c["securityContext"] = SECURITY_CONTEXT
    return c


def _items(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [{"key": key, "path": path} for key, path in pairs]


def _tls_volume(name: str, secret: str) -> dict[str, Any]:
    items = _items((TLS_CERT, TLS_CERT), (TLS_KEY, TLS_KEY), (TLS_CA, TLS_CA))
    return {
        "name": name,
        "projected": {"defaultMode": READ_ONLY_MODE, "sources": [{"secret": {"name": secret, "items": items}}]},
    }


def _volumes(values: ChartValues) -> list[dict[str, Any]]:
    volumes = [
        _tls_volume("etcd-server-secrets", SERVER_CERT_SECRET),
        _tls_volume("etcd-admin-client", ADMIN_CERT_SECRET),
        {"name": "etcd-users-config", "configMap": {"name": USERS_CONFIG_MAP, "defaultMode": READ_ONLY_MODE}},
        {"name": "etcd-data-dir", "emptyDir": {"medium": ""}},
    ]
    if values.kvstoremesh:
        # cilium-kvstoremesh lists no items: every peer key becomes a file, and adding or removing a
        # peer updates the volume in place instead of restarting the pod.
        remote = _items(
            (TLS_KEY, "common-etcd-client.key"),
            (TLS_CERT, "common-etcd-client.crt"),
            (TLS_CA, "common-etcd-client-ca.crt"),
        )
        sources = [
            {"secret": {"name": KVSTOREMESH_SECRET, "optional": True}},
            {"secret": {"name": REMOTE_CERT_SECRET, "optional": True, "items": remote}},
        ]
        volumes.append(
            {"name": "kvstoremesh-secrets", "projected": {"defaultMode": READ_ONLY_MODE, "sources": sources}}
        )
    return volumes


def _host_aliases(values: ChartValues) -> list[dict[str, Any]]:
    aliases = []
    for peer in values.peers:
        aliases += [{"ip": host, "hostnames": [peer_hostname(peer)]} for host in peer.hosts]
    return aliases


def deployment(values: ChartValues) -> dict[str, Any]:
    containers = [_etcd(values), _apiserver(values)]
    if values.kvstoremesh:
        containers.append(_kvstoremesh(values))
    pod_annotations = {}
    if values.cilium_version.at_least(18):
        pod_annotations["kubectl.kubernetes.io/default-container"] = "apiserver"
    pod_annotations[ANNOTATION_CONFIG_CHECKSUM] = config_checksum(values)
    spec: dict[str, Any] = {
        "securityContext": POD_SECURITY_CONTEXT,
        "initContainers": [_etcd_init(values)],
        "containers": containers,
        "volumes": _volumes(values),
        "restartPolicy": "Always",
        "priorityClassName": PRIORITY_CLASS,
        "serviceAccountName": APISERVER,
        "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS,
        "automountServiceAccountToken": True,
        "affinity": AFFINITY,
        "nodeSelector": NODE_SELECTOR,
    }
    if values.kvstoremesh and values.peer_addressing == "hostname" and values.peers:
        spec["hostAliases"] = _host_aliases(values)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(APISERVER, values.namespace, values.network, labels=APISERVER_LABELS),
        "spec": {
            "replicas": values.replicas,
            "selector": {"matchLabels": dict(APISERVER_SELECTOR)},
            "strategy": ROLLING_UPDATE,
            "template": {
                "metadata": {
                    "annotations": pod_annotations,
                    "labels": {LABEL_PART_OF: "cilium", LABEL_NAME: APISERVER, LABEL_K8S_APP: APISERVER},
                },
                "spec": spec,
            },
        },
    }
