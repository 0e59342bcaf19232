"""The controllers of a local cluster: what kube-controller-manager and kube-scheduler do for a
real one, as clients of the cluster's own API server.

``python -m fleetnet.local.controllers --kubeconfig FILE`` runs them in one process
(``manager.py``): the scheduler, the Deployment, ReplicaSet, EndpointSlice, namespace,
ServiceAccount controllers and the garbage collector, each a reconcile loop over shared
informers. Their decisions are pure and live in ``fleetnet.plan.controllers``.
"""

from __future__ import annotations

from fleetnet.local.controllers.manager import CONTROLLERS, ControllerManager, Settings, run

__all__ = ["CONTROLLERS", "ControllerManager", "Settings", "run"]
