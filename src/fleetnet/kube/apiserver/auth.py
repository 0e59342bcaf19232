"""Who is asking (client certificates and ServiceAccount bearer tokens) and whether they may (RBAC).

Authentication as kube-apiserver does it: a verified client certificate names the user (CN) and
its groups (O); a bearer token signed with the cluster's service-account key names
``system:serviceaccount:<ns>:<name>``; anything else is anonymous, and anonymous requests are
refused (401) except the health probes. Authorization is RBAC over the ClusterRoles, Roles and
their bindings stored in the cluster itself, so a Helm chart's (or fleetnet's) RBAC objects mean
what they mean on a real cluster.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fleetnet.kube.apiserver.storage import Storage
from fleetnet.pki import tokens


@dataclass(frozen=True, slots=True)
class User:
    name: str
    groups: tuple[str, ...]

    @property
    def is_anonymous(self) -> bool:
        return self.name == "system:anonymous"


ANONYMOUS = User("system:anonymous", ("system:unauthenticated",))


def from_peercert(cert: Mapping[str, Any] | None) -> User | None:
    """``ssl.SSLSocket.getpeercert()`` of a verified client certificate → its user."""
    if not cert:
        return None
    cn = None
    orgs: list[str] = []
    for rdn in cert.get("subject", ()):
        for k, v in rdn:
            if k == "commonName":
                cn = v
            elif k == "organizationName":
                orgs.append(v)
    if not cn:
        return None
    return User(cn, (*orgs, "system:authenticated"))


def from_bearer(header: str | None, sa_public_pem: bytes | None) -> User | None:
    if not header or not header.startswith("Bearer ") or sa_public_pem is None:
        return None
    ident = tokens.verify(sa_public_pem, header[len("Bearer ") :].strip())
    return None if ident is None else User(ident.user, ident.groups)


# --- RBAC ----------------------------------------------------------------------------------------


def _matches_subject(subject: Mapping[str, Any], user: User, binding_ns: str | None) -> bool:
    kind = subject.get("kind")
    name = subject.get("name")
    if kind == "User":
        return name == user.name
    if kind == "Group":
        return name in user.groups
    if kind == "ServiceAccount":
        ns = subject.get("namespace") or binding_ns
        return user.name == f"system:serviceaccount:{ns}:{name}"
    return False


def _rule_allows(
    rule: Mapping[str, Any], verb: str, group: str, resource: str, sub: str | None, name: str | None
) -> bool:
    if "*" not in (rule.get("verbs") or []) and verb not in (rule.get("verbs") or []):
        return False
    groups = rule.get("apiGroups") or []
    if "*" not in groups and group not in groups:
        return False
    wanted = f"{resource}/{sub}" if sub else resource
    resources = rule.get("resources") or []
    ok = "*" in resources or wanted in resources or (sub is not None and f"*/{sub}" in resources)
    if not ok:
        return False
    names = rule.get("resourceNames") or []
    return not names or (name is not None and name in names)


class Authorizer:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def _role_rules(self, kind: str, name: str, namespace: str | None) -> list[Mapping[str, Any]]:
        if kind == "ClusterRole":
            e = self.storage.get(f"/registry/rbac.authorization.k8s.io/clusterroles/{name}")
        else:
            e = self.storage.get(f"/registry/rbac.authorization.k8s.io/roles/{namespace}/{name}")
        return list((e.obj.get("rules") or []) if e is not None else [])

    def rules_for(self, user: User, namespace: str | None) -> Iterable[Mapping[str, Any]]:
        for e in self.storage.list("/registry/rbac.authorization.k8s.io/clusterrolebindings/"):
            b = e.obj
            if any(_matches_subject(s, user, None) for s in b.get("subjects") or []):
                ref = b.get("roleRef") or {}
                yield from self._role_rules("ClusterRole", str(ref.get("name")), None)
        if namespace:
            for e in self.storage.list(f"/registry/rbac.authorization.k8s.io/rolebindings/{namespace}/"):
                b = e.obj
                if any(_matches_subject(s, user, namespace) for s in b.get("subjects") or []):
                    ref = b.get("roleRef") or {}
                    yield from self._role_rules(str(ref.get("kind")), str(ref.get("name")), namespace)

    def allowed(
        self, user: User, verb: str, group: str, resource: str, sub: str | None, namespace: str | None, name: str | None
    ) -> bool:
        if "system:masters" in user.groups:
            return True  # kube's superuser group short-circuits authorization
        return any(_rule_allows(r, verb, group, resource, sub, name) for r in self.rules_for(user, namespace))


def forbidden_reason(user: User, verb: str, group: str, resource: str, sub: str | None, namespace: str | None) -> str:
    what = f"{resource}/{sub}" if sub else resource
    where = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
    return f'User "{user.name}" cannot {verb} resource "{what}" in API group "{group}"{where}'


# --- the RBAC objects a new cluster starts with (kube's bootstrap policy, reduced) ---------------------


def cluster_role(
    name: str, rules: Sequence[Mapping[str, Any]], labels: Mapping[str, str] | None = None
) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name, "labels": dict(labels or {"kubernetes.io/bootstrapping": "rbac-defaults"})},
        "rules": [dict(r) for r in rules],
    }


def cluster_role_binding(
    name: str, role: str, subjects: Sequence[Mapping[str, Any]], labels: Mapping[str, str] | None = None
) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name, "labels": dict(labels or {"kubernetes.io/bootstrapping": "rbac-defaults"})},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [dict(s) for s in subjects],
    }


def _rule(groups: Sequence[str], resources: Sequence[str], verbs: Sequence[str]) -> dict[str, Any]:
    return {"apiGroups": list(groups), "resources": list(resources), "verbs": list(verbs)}


READ = ("get", "list", "watch")


def bootstrap_rbac() -> list[dict[str, Any]]:
    everything = [_rule(["*"], ["*"], ["*"]), {"nonResourceURLs": ["*"], "verbs": ["*"]}]
    node_rules = [
        _rule([""], ["pods"], (*READ, "delete", "create")),
        _rule([""], ["pods/status"], ("get", "patch", "update")),
        _rule([""], ["nodes"], (*READ, "create", "update", "patch", "delete")),
        _rule([""], ["nodes/status"], ("get", "patch", "update")),
        _rule([""], ["services", "namespaces", "configmaps", "secrets", "serviceaccounts"], READ),
        _rule([""], ["events"], ("create", "patch", "update")),
        _rule([""], ["serviceaccounts/token"], ("create",)),
        _rule(["discovery.k8s.io"], ["endpointslices"], READ),
        _rule(["coordination.k8s.io"], ["leases"], (*READ, "create", "update", "patch", "delete")),
        _rule(["apps"], ["daemonsets", "deployments", "replicasets"], READ),
    ]
    return [
        cluster_role("cluster-admin", everything),
        cluster_role_binding(
            "cluster-admin",
            "cluster-admin",
            [{"kind": "Group", "name": "system:masters", "apiGroup": "rbac.authorization.k8s.io"}],
        ),
        cluster_role("system:kube-controller-manager", everything),
        cluster_role_binding(
            "system:kube-controller-manager",
            "system:kube-controller-manager",
            [{"kind": "User", "name": "system:kube-controller-manager", "apiGroup": "rbac.authorization.k8s.io"}],
        ),
        cluster_role("system:node", node_rules),
        cluster_role_binding(
            "system:node",
            "system:node",
            [{"kind": "Group", "name": "system:nodes", "apiGroup": "rbac.authorization.k8s.io"}],
        ),
    ]
