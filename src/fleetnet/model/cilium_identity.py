"""Identity, a security identity as its cluster exports it, and the label string that is its value.

Key: ``cilium/state/identities/v1/id/<id>``, value ``source:key=value;...``. Source:
``pkg/identity`` and ``pkg/labels`` (the identity's label string).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from fleetnet.model import keys
from fleetnet.model.cilium_ids import DEFAULT_MAX_CONNECTED_CLUSTERS, _parse_key, identity_bounds
from fleetnet.model.gojson import _Decoder

LABEL_SOURCE_K8S = "k8s"
LABEL_SOURCE_UNSPEC = "unspec"
POLICY_LABEL_CLUSTER = "io.cilium.k8s.policy.cluster"


@dataclass(frozen=True, slots=True, order=True)
class Label:
    """One security label; ordered by key, as Cilium sorts labels."""

    key: str
    value: str = ""
    source: str = LABEL_SOURCE_UNSPEC

    def __str__(self) -> str:
        return f"{self.source}:{self.key}={self.value}" if self.value else f"{self.source}:{self.key}"

    def kvstore_form(self) -> str:
        """``Label.FormatForKVStore``: ``source:key=value;`` (the ';' is always there)."""
        return f"{self.source}:{self.key}={self.value};"


def format_labels(labels: Iterable[Label]) -> str:
    """The kvstore form of a label set: each label's ``source:key=value;``, sorted by key."""
    return "".join(label.kvstore_form() for label in sorted(labels))


def parse_labels(text: str) -> tuple[Label, ...]:
    """``NewLabelArrayFromSortedList``: split on ';', each label ``source:key=value``."""
    out: list[Label] = []
    for item in text.split(";"):
        if not item:
            continue
        source, sep, rest = item.partition(":")
        if not sep:
            source, rest = LABEL_SOURCE_UNSPEC, item
        elif not source:
            source = LABEL_SOURCE_UNSPEC
        key, _, value = rest.partition("=")
        out.append(Label(key=key, value=value, source=source))
    return tuple(sorted(out))


@dataclass(frozen=True, slots=True)
class Identity:
    """A security identity as its cluster exports it: the number (key) and the label string (value)."""

    id: int
    labels: tuple[Label, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", tuple(sorted(self.labels)))

    @property
    def key(self) -> str:
        return keys.identity_key(self.id)

    @property
    def cluster(self) -> str | None:
        """The value of ``k8s:io.cilium.k8s.policy.cluster``, the label that ties it to its cluster."""
        return next(
            (lb.value for lb in self.labels if lb.source == LABEL_SOURCE_K8S and lb.key == POLICY_LABEL_CLUSTER),
            None,
        )

    def to_value(self) -> bytes:
        return format_labels(self.labels).encode()

    @classmethod
    def from_kv(
        cls,
        data: bytes | str,
        key: str,
        *,
        cluster: str | None = None,
        cluster_id: int | None = None,
        max_connected_clusters: int = DEFAULT_MAX_CONNECTED_CLUSTERS,
    ) -> Identity:
        """Decode and validate with the remote identity validators (``clusterIDValidator``: the id is
        in the remote's range; ``clusterNameValidator``: its cluster label names the remote)."""
        dec = _Decoder("identity", key)
        parsed = _parse_key(dec, key, keys.KeyKind.IDENTITY)
        assert parsed.identity is not None
        text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
        ident = cls(parsed.identity, parse_labels(text))
        if cluster_id is not None:
            lo, hi = identity_bounds(cluster_id, max_connected_clusters)
            if not lo <= ident.id <= hi:
                dec.fail("", f"ID {ident.id} is outside of the expected range [{lo}, {hi}]")
        expected = cluster if cluster is not None else parsed.cluster
        if expected is not None:
            got = ident.cluster
            if got is None:
                dec.fail("", f"could not find expected label {POLICY_LABEL_CLUSTER}")
            if got != expected:
                dec.fail("", f"unexpected cluster name: got {got}, expected {expected}")
        if cluster is not None and parsed.cluster is not None and parsed.cluster != cluster:
            dec.fail("", f"the key belongs to cluster {parsed.cluster}, expected {cluster}")
        return ident
