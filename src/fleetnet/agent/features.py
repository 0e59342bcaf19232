"""The agent's pluggable features (pods, services, policy), loaded in dependency order."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fleetnet.agent.agent import Agent


def load_features(agent: Agent) -> list[Any]:
    from fleetnet.agent.kubelet import Kubelet

    return [Kubelet(agent)]
