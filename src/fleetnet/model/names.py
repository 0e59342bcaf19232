"""Name rules shared by the API, the CLI and the planners.

Cilium's cluster-name rule (pkg/clustermesh/types) is stricter than a DNS label, and every
member becomes a Cilium cluster, so member names follow it; Azure's resource names are DNS labels.
"""

from __future__ import annotations

import re

from fleetnet.errors import InvalidInput

CLUSTER_NAME_RE = re.compile(r"^([a-z0-9][-a-z0-9]*)?[a-z0-9]$")
DNS_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
CLUSTER_NAME_MAX = 32


def check_member_name(name: str) -> str:
    """A member name is a Cilium cluster name: ≤ 32 chars, lower-case alphanumerics and '-', not 'default'."""
    if not name or len(name) > CLUSTER_NAME_MAX or not CLUSTER_NAME_RE.match(name):
        raise InvalidInput(
            f"member name {name!r} is not a valid Cilium cluster name: use at most {CLUSTER_NAME_MAX} "
            "lower-case letters, digits and '-', starting and ending with a letter or digit."
        )
    if name == "default":
        raise InvalidInput(
            "member name 'default' is reserved by Cilium (it means ClusterMesh is off): choose another name."
        )
    return name


def check_resource_name(kind: str, name: str, max_len: int) -> str:
    """Azure resource names (profiles, strategies, runs) are DNS labels of bounded length."""
    if not name or len(name) > max_len or not DNS_LABEL_RE.match(name):
        raise InvalidInput(
            f"{kind} name {name!r} is invalid: use 1 to {max_len} lower-case letters, digits and '-', "
            "starting and ending with a letter or digit."
        )
    return name
