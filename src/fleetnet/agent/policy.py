"""Network policy of a local cluster: compile CiliumNetworkPolicies against every known identity
and program each endpoint's policy map and enforcement flags; answer `policy get` and `policy trace`.

Policies are per cluster (not distributed), as in Cilium. The compile is pure (``plan/policy``); it
is redone whenever policies, local endpoints or the identities known from remote clusters change,
and only the endpoints whose entries differ are rewritten in the map.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import yaml

from fleetnet.agent.datapath import Datapath, endpoint_id
from fleetnet.agent.identity import Identities
from fleetnet.agent.objects import AgentObjects
from fleetnet.datapath.maps import PolicyEntry as MapEntry
from fleetnet.errors import InvalidInput, NotFound
from fleetnet.model.cluster import ClusterConfig
from fleetnet.plan.labels import LabelSet
from fleetnet.plan.policy import Endpoint, EndpointPolicy, Policy, compile_policies, parse_policy, trace
from fleetnet.plan.policy.model import PROTO_TCP, PROTO_UDP

log = logging.getLogger(__name__)

POLICY_KINDS = ("CiliumNetworkPolicy", "CiliumClusterwideNetworkPolicy")
PROTOCOLS = {"TCP": PROTO_TCP, "UDP": PROTO_UDP}


class PolicyFeature:
    uses_remote_state = True

    def __init__(
        self, objects: AgentObjects, identities: Identities, config: Callable[[], ClusterConfig], datapath: Datapath
    ) -> None:
        self.objects = objects
        self.identities = identities
        self.config = config
        self.datapath = datapath
        self.policies: list[Policy] = []
        self.compiled: dict[int, EndpointPolicy] = {}
        self.endpoints: list[Endpoint] = []
        self._programmed: dict[int, tuple[bool, bool, frozenset[MapEntry]]] = {}
        self._inputs: tuple[Any, ...] | None = None

    @property
    def default_local_cluster(self) -> bool:
        mesh = self.config().mesh
        return True if mesh is None else mesh.policy_default_local_cluster

    def _identities(self) -> Identities:
        return self.identities

    def load_policies(self) -> list[Policy]:
        out: list[Policy] = []
        for kind in POLICY_KINDS:
            for doc in self.objects.list(kind):
                try:
                    out.append(parse_policy(doc))
                except InvalidInput as e:  # validated at apply; a bad stored one is skipped, not fatal
                    log.warning("ignoring policy %s: %s", doc["metadata"].get("name"), e)
        return out

    def reconcile(self) -> None:
        ids = self._identities()
        self.policies = self.load_policies()
        self.endpoints = [
            Endpoint(endpoint_id(ip), p["metadata"]["namespace"], p["metadata"]["name"], labels, identity)
            for ip, (identity, labels, p) in sorted(ids.pods.items())
        ]
        known = ids.known()
        inputs = (tuple(self.policies), tuple(self.endpoints), frozenset(known.items()), self.default_local_cluster)
        if inputs != self._inputs:  # recompile only when something the policy depends on changed
            self._inputs = inputs
            self.compiled = compile_policies(
                self.config().name,
                self.policies,
                self.endpoints,
                known,
                default_local_cluster=self.default_local_cluster,
            )
        dp = self.datapath
        if dp is None:
            return
        by_id = {endpoint_id(ip): ip for ip in ids.pods}
        for ep_id, pol in self.compiled.items():
            entries = frozenset(MapEntry(e.direction, e.identity, e.dport, e.proto, e.deny) for e in pol.entries)
            want = (pol.ingress_enforced, pol.egress_enforced, entries)
            if self._programmed.get(ep_id) == want:
                continue
            ip = by_id[ep_id]
            if dp.dp.endpoints.get(ip) is None:
                continue  # not attached yet: the next pass programs it
            # entries first, then enforcement: an endpoint never enforces an empty map by accident
            dp.dp.policy.replace_endpoint(ep_id, entries)
            dp.dp.endpoints.set_enforcement(ip, ingress=pol.ingress_enforced, egress=pol.egress_enforced)
            self._programmed[ep_id] = want
        for ep_id in set(self._programmed) - set(self.compiled):
            dp.dp.policy.delete_endpoint(ep_id)
            del self._programmed[ep_id]

    def status(self) -> dict[str, Any]:
        enforced = sum(1 for p in self.compiled.values() if p.ingress_enforced or p.egress_enforced)
        return {
            "summary": f"{len(self.policies)} policies, {enforced}/{len(self.compiled)} endpoints enforcing",
            "policies": len(self.policies),
        }

    # ---------------------------------------------------------------- API
    def api_get(self, path: str, _query: dict[str, str]) -> Any:
        if path != "policy":
            return None
        eps = {e.id: e for e in self.endpoints}
        return {
            "policies": [str(p.ref) for p in self.policies],
            "defaultLocalCluster": self.default_local_cluster,
            "endpoints": [
                {
                    "endpoint": f"{eps[i].namespace}/{eps[i].name}",
                    "id": i,
                    "identity": eps[i].identity,
                    "ingressEnforced": pol.ingress_enforced,
                    "egressEnforced": pol.egress_enforced,
                    "entries": sorted(str(e) for e in pol.entries),
                }
                for i, pol in sorted(self.compiled.items())
            ],
        }

    def _party(self, text: str | None, labels: dict[str, str] | None) -> Endpoint | LabelSet | int:
        if labels:
            return LabelSet.from_mapping(labels)
        if not text:
            raise InvalidInput("give the source as CLUSTER/NAMESPACE/POD or as labels.")
        parts = text.split("/")
        if len(parts) != 3:
            raise InvalidInput(f"{text!r} must be CLUSTER/NAMESPACE/POD.")
        cluster, ns, name = parts
        if cluster == self.config().name:
            for e in self.endpoints:
                if (e.namespace, e.name) == (ns, name):
                    return e
            raise NotFound(f"pod {ns}/{name} has no endpoint in cluster {cluster}.")
        # a remote pod: found through the ipcache entries learnt from its cluster
        identity = self._identities().remote_pod_identity(cluster, ns, name)
        if identity is not None:
            return identity
        raise NotFound(
            f"pod {text} is not known to {self.config().name} (not local, and not exported by a connected "
            "cluster); give its labels instead "
            "(--src-labels app=...,io.kubernetes.pod.namespace=...,io.cilium.k8s.policy.cluster=...)."
        )

    def api_post(self, path: str, body: dict[str, Any]) -> Any:
        if path != "policy/trace":
            return None
        proto = PROTOCOLS.get(str(body.get("protocol", "TCP")).upper())
        if proto is None:
            raise InvalidInput("the protocol must be TCP or UDP.")
        candidates: list[Policy] = []
        if body.get("candidate"):
            try:
                docs = [d for d in yaml.safe_load_all(body["candidate"]) if d]
            except yaml.YAMLError as e:
                raise InvalidInput(f"the candidate policy is not valid YAML: {e}.") from e
            candidates = [parse_policy(d) for d in docs]
        src = self._party(body.get("src"), body.get("srcLabels"))
        dst = self._party(body.get("dst"), None)
        verdict = trace(
            src,
            dst,
            int(body["dport"]),
            proto,
            local_cluster=self.config().name,
            policies=self.policies,
            identities=self._identities().known(),
            endpoints=self.endpoints,
            candidates=candidates,
            default_local_cluster=self.default_local_cluster,
        )
        return {"allowed": verdict.allowed, "decidedBy": verdict.decided_by}
