"""One exception tree for the whole package.

Every error a user can cause or meet is one of these, carrying one plain sentence that says
what is wrong and what to do. Adapters translate third-party errors into them with
``raise ... from e`` so that nothing from pyroute2, grpc, sqlite or httpx leaks past its adapter.

    FleetnetError
    ├── InvalidInput        bad names, selectors, YAML, flags (HTTP 400)
    ├── NotFound            a member, profile, run... that does not exist (HTTP 404)
    ├── Conflict            refused because of current state (HTTP 409)
    ├── DaemonNotRunning    the CLI found no daemon (exit 2)
    └── SystemFailure       an effect failed: netlink, etcd, bpf, a process (HTTP 500)
"""

from __future__ import annotations


class FleetnetError(Exception):
    """Base of every fleetnet error; ``str(e)`` is the sentence shown to the user."""

    status_code = 500


class InvalidInput(FleetnetError):
    status_code = 400


class NotFound(FleetnetError):
    status_code = 404


class Conflict(FleetnetError):
    status_code = 409


class DaemonNotRunning(FleetnetError):
    status_code = 503


class SystemFailure(FleetnetError):
    status_code = 500
