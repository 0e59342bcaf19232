from __future__ import annotations

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from fleetnet.errors import InvalidInput
from fleetnet.kvstore.config import EtcdClientConfig, is_cluster_config, parse, render

CFG = EtcdClientConfig(
    endpoints=("https://10.0.0.2:2379",),
    trusted_ca_file="/var/lib/cilium/clustermesh/common-etcd-client-ca.crt",
    cert_file="/var/lib/cilium/clustermesh/common-etcd-client.crt",
    key_file="/var/lib/cilium/clustermesh/common-etcd-client.key",
)


def test_render_matches_cilium_layout() -> None:
    assert render(CFG) == (
        "endpoints:\n"
        "- https://10.0.0.2:2379\n"
        "trusted-ca-file: /var/lib/cilium/clustermesh/common-etcd-client-ca.crt\n"
        "key-file: /var/lib/cilium/clustermesh/common-etcd-client.key\n"
        "cert-file: /var/lib/cilium/clustermesh/common-etcd-client.crt\n"
    )


def test_parse_reads_a_helm_rendered_file_and_ignores_extra_keys() -> None:
    text = """endpoints:
- https://cluster2.mesh.cilium.io:2379
trusted-ca-file: /var/lib/cilium/clustermesh/common-etcd-client-ca.crt
key-file: /var/lib/cilium/clustermesh/common-etcd-client.key
cert-file: /var/lib/cilium/clustermesh/common-etcd-client.crt
cilium-host-aliases:
- hostname: cluster2.mesh.cilium.io
  ips: [192.0.2.10]
"""
    assert parse(text) == EtcdClientConfig(
        ("https://cluster2.mesh.cilium.io:2379",), CFG.trusted_ca_file, CFG.cert_file, CFG.key_file
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("endpoints: [\n", "not valid YAML"),
        ("- a\n- b\n", "must be a YAML mapping"),
        ("endpoints: []\ntrusted-ca-file: a\nkey-file: b\ncert-file: c\n", "non-empty list of URLs"),
        ("endpoints: https://x:1\ntrusted-ca-file: a\nkey-file: b\ncert-file: c\n", "non-empty list of URLs"),
        ("endpoints: [https://x:1]\nkey-file: b\ncert-file: c\n", "'trusted-ca-file'"),
        ("endpoints: [https://x:1]\ntrusted-ca-file: a\nkey-file: 3\ncert-file: c\n", "'key-file'"),
    ],
)
def test_parse_rejects_bad_content_with_one_sentence(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as info:
        parse(text)
    assert str(info.value).endswith(".")


def test_is_cluster_config_is_ciliums_substring_rule() -> None:
    assert is_cluster_config(render(CFG))
    assert is_cluster_config("# endpoints: commented out still counts in Cilium\n")
    assert not is_cluster_config("")
    assert not is_cluster_config("trusted-ca-file: a\n")


paths = st.text(min_size=1, max_size=40)


@given(
    endpoints=st.lists(st.text(min_size=1, max_size=40), min_size=1, max_size=3),
    ca=paths,
    cert=paths,
    key=paths,
)
def test_render_parse_round_trip(endpoints: list[str], ca: str, cert: str, key: str) -> None:
    cfg = EtcdClientConfig(tuple(endpoints), ca, cert, key)
    text = render(cfg)
    assert is_cluster_config(text)
    assert parse(text) == cfg
    assert yaml.safe_load(text)["endpoints"] == endpoints
