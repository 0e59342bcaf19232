"""What the controllers of a local cluster decide, as pure functions over Kubernetes objects.

kube-controller-manager's and kube-scheduler's decisions, one module per controller, each written
after the Go code it follows (``pkg/controller/deployment``, ``replicaset``, ``endpointslice``,
``garbagecollector``, ``namespace``, ``pkg/scheduler``): the inputs are objects as the API server
returns them (JSON dicts, never mutated), the outputs are the objects to write or small frozen
decisions. ``fleetnet.local.controllers`` reads the inputs from informers and applies the outputs.
"""
