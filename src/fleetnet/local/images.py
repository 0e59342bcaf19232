"""What a container image means on a local cluster, where a container is a host process in the
pod's network namespace (there is no image store and no root filesystem of its own).

- ``fleetnet/echo`` (and a few well-known web server images) run fleetnet's echo server on the
  container's ports (8080, or 80 for the web servers, when none is declared): it answers with the
  cluster, node and pod that served the request.
- ``fleetnet/client`` and plain base images with no command idle (``sleep infinity``).
- A container with ``command``/``args`` runs that command (with the host's binaries), as the image's
  entrypoint would: ``kubectl run t --image=busybox -- sh -c 'echo hi'`` works.
- Anything else cannot be "pulled": the kubelet reports ``ErrImagePull`` with a sentence saying why.
Pure.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

ECHO = "fleetnet/echo"
CLIENT = "fleetnet/client"
# images whose process is a web server: the echo server stands in for them
WEB_SERVERS = {"nginx", "httpd", "traefik/whoami", "hashicorp/http-echo", "ealen/echo-server", "kennethreitz/httpbin"}
# images that are only a shell and tools: without a command they idle, as `kubectl run -- sleep` would
BASE = {"busybox", "alpine", "ubuntu", "debian", "fedora", "centos", "registry.k8s.io/pause", "k8s.gcr.io/pause"}


@dataclass(frozen=True, slots=True)
class Program:
    argv: tuple[str, ...]
    echo: bool  # the echo server: ready once it listens on its ports
    ports: tuple[int, ...] = ()


class NotPullable(Exception):
    """This image cannot run on a local cluster; the message is the kubelet's event text."""


def repository(image: str) -> str:
    """``docker.io/library/nginx:1.27`` → ``nginx``; ``quay.io/x/y@sha256:..`` → ``quay.io/x/y``."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name = name[: len(name) - len(last)] + last.split(":", 1)[0]
    for prefix in ("docker.io/library/", "docker.io/", "index.docker.io/library/"):
        if name.startswith(prefix):
            name = name[len(prefix) :]
    return name


def _container_ports(c: Mapping[str, Any]) -> tuple[list[int], list[int]]:
    tcp: list[int] = []
    udp: list[int] = []
    for p in c.get("ports") or []:
        if isinstance(p, Mapping) and isinstance(p.get("containerPort"), int):
            (udp if p.get("protocol") == "UDP" else tcp).append(int(p["containerPort"]))
    return tcp, udp


def program(container: Mapping[str, Any], *, cluster: str, node: str, namespace: str, pod: str) -> Program:
    image = str(container.get("image") or "")
    repo = repository(image)
    command = [str(a) for a in container.get("command") or []]
    args = [str(a) for a in container.get("args") or []]
    tcp, udp = _container_ports(container)
    if repo == ECHO or (repo in WEB_SERVERS and not command):
        default = 8080 if repo == ECHO else 80
        ports = tcp or ([] if udp else [default])
        argv = [sys.executable, "-m", "fleetnet.workloads.echo", "--cluster", cluster, "--node", node]
        argv += ["--namespace", namespace, "--pod", pod]
        for p in ports:
            argv += ["--tcp", str(p)]
        for p in udp:
            argv += ["--udp", str(p)]
        return Program(tuple(argv), True, tuple(ports))
    if command or (args and repo in BASE):
        return Program(tuple(command + args if command else args), False)
    if repo == CLIENT or repo in BASE:
        return Program(("sleep", "infinity"), False)
    raise NotPullable(
        f'Failed to pull image "{image}": local clusters run no container images; use fleetnet/echo, '
        "fleetnet/client, a web server image (nginx, httpd), or give the container a command"
    )


def env_of(container: Mapping[str, Any], extra: Mapping[str, str]) -> dict[str, str]:
    """The container's environment: the pod's ``env`` values (plain values only) over ``extra``."""
    out = dict(extra)
    for e in container.get("env") or []:
        if isinstance(e, Mapping) and e.get("name") and "value" in e:
            out[str(e["name"])] = str(e.get("value") or "")
    return out


def argv_summary(argv: Sequence[str]) -> str:
    return " ".join(argv[:4]) + (" ..." if len(argv) > 4 else "")
