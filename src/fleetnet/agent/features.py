"""The agent's pluggable features (pods, services, policy), loaded in dependency order."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fleetnet.agent.agent import Agent


def load_features(agent: Agent) -> list[Any]:
    from fleetnet.agent.datapath import Datapath
    from fleetnet.agent.identity import Identities
    from fleetnet.agent.kubelet import Kubelet
    from fleetnet.agent.policy import PolicyFeature
    from fleetnet.agent.services import Services

    # the datapath first: pods are attached to it as their network appears; identities before
    # policy, which compiles against them
    datapath = Datapath(agent)
    return [datapath, Kubelet(agent), Services(agent), Identities(agent), PolicyFeature(agent)]
