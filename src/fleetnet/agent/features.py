"""The agent's features, built in dependency order from the narrow things each uses.

The datapath first (pods are attached to it as their sandbox appears); identities before policy,
which compiles against them; the kubelet last, since it calls the others' sandbox hooks. No
feature sees the Agent: each gets its objects, the ClusterMesh, the datapath, a config getter.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fleetnet.agent.ciliumnodes import CiliumNodes
from fleetnet.agent.clustermesh import ClusterMesh
from fleetnet.agent.datapath import Datapath
from fleetnet.agent.identity import Identities
from fleetnet.agent.kubelet import Kubelet
from fleetnet.agent.objects import AgentObjects
from fleetnet.agent.policy import PolicyFeature
from fleetnet.agent.sandboxes import Sandboxes
from fleetnet.agent.services import Services
from fleetnet.hub.paths import ClusterPaths
from fleetnet.kube.objects import ClusterObjects
from fleetnet.model.cluster import ClusterConfig


def load_features(
    config: Callable[[], ClusterConfig],
    paths: ClusterPaths,
    objects: AgentObjects,
    kubelet_objects: ClusterObjects,
    mesh: ClusterMesh,
) -> tuple[list[Any], Datapath]:
    sandboxes = Sandboxes(paths.run / "pods")
    datapath = Datapath(config(), sandboxes)
    services = Services(objects, mesh, config, datapath, sandboxes)
    identities = Identities(objects, mesh, config, datapath)
    policy = PolicyFeature(objects, identities, config, datapath)
    logs = paths.logs / "pods"
    logs.mkdir(parents=True, exist_ok=True)
    kubelet = Kubelet(
        kubelet_objects,
        config,
        sandboxes,
        str(logs),
        str(paths.run),
        on_sandbox=[datapath.pod_network_ready, services.pod_network_ready],
    )
    return [datapath, CiliumNodes(objects, config), kubelet, services, identities, policy], datapath
