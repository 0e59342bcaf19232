"""Cilium's per-remote etcd client config file (reference §4.1), rendered and parsed.

One such file per remote cluster sits in the clustermesh config directory; its name is the remote
cluster's name. The format is the etcd client YAML (``go.etcd.io/etcd/client/v3/yaml``) so that the
same directory could be handed to a real cilium-agent unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from fleetnet.errors import InvalidInput

# Cilium's test for "this file is a cluster config" (pkg/clustermesh/common/config.go).
_MARKER = "endpoints:"


@dataclass(frozen=True, slots=True)
class EtcdClientConfig:
    endpoints: tuple[str, ...]
    trusted_ca_file: str
    cert_file: str
    key_file: str


def render(cfg: EtcdClientConfig) -> str:
    """The YAML text, keys in the order Cilium's Helm chart writes them."""
    doc = {
        "endpoints": list(cfg.endpoints),
        "trusted-ca-file": cfg.trusted_ca_file,
        "key-file": cfg.key_file,
        "cert-file": cfg.cert_file,
    }
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)


def _string(doc: dict[object, object], key: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"the etcd client config needs {key!r} as a non-empty string, found {value!r}.")
    return value


def parse(text: str) -> EtcdClientConfig:
    """Read a config file's text; other keys (e.g. ``cilium-host-aliases``) are ignored."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise InvalidInput(f"the etcd client config is not valid YAML ({e}); fix the file.") from e
    if not isinstance(doc, dict):
        raise InvalidInput("the etcd client config must be a YAML mapping with an 'endpoints' list.")
    endpoints = doc.get("endpoints")
    if not isinstance(endpoints, list) or not endpoints or not all(isinstance(e, str) and e for e in endpoints):
        raise InvalidInput(
            f"the etcd client config needs 'endpoints' as a non-empty list of URLs, found {endpoints!r}."
        )
    return EtcdClientConfig(
        endpoints=tuple(endpoints),
        trusted_ca_file=_string(doc, "trusted-ca-file"),
        cert_file=_string(doc, "cert-file"),
        key_file=_string(doc, "key-file"),
    )


def is_cluster_config(text: str) -> bool:
    """Cilium's rule: a file in the config directory is a cluster config iff it contains ``endpoints:``."""
    return _MARKER in text
