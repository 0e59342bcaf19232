"""Security labels: the label set an identity stands for, in Cilium's own forms.

A pod's security identity is decided by a set of labels, not by its name or address: its pod labels
that are relevant for identity (Cilium drops hashes and Kubernetes bookkeeping labels, so all replicas
of a Deployment share one identity), its namespace, its service account and the name of its cluster
(``io.cilium.k8s.policy.cluster``, which is what lets a policy tell clusters of a mesh apart). Every
label carries a source (``k8s`` for pods, ``reserved`` for Cilium's built-in identities).

The text form is Cilium's kvstore form (``source:key=value;`` per label, sorted by key), because
identities travel between clusters in that form (``cilium/state/identities/v1/id/<id>``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from itertools import pairwise

from fleetnet.errors import InvalidInput

SOURCE_K8S = "k8s"
SOURCE_RESERVED = "reserved"
# Only selectors use ``any``: it matches a key whatever its source. Labels never carry it.
SOURCE_ANY = "any"

LABEL_NAMESPACE = "io.kubernetes.pod.namespace"
LABEL_CLUSTER = "io.cilium.k8s.policy.cluster"
LABEL_SERVICE_ACCOUNT = "io.cilium.k8s.policy.serviceaccount"
NAMESPACE_LABELS_PREFIX = "io.cilium.k8s.namespace.labels."

# Cilium's default identity-relevant label filter (Documentation: "Limiting Identity-Relevant Labels").
# A key is kept when the longest matching include is longer than the shortest matching ignore, or when
# no ignore matches. Patterns match at the start of the key.
_INCLUDE = (
    re.escape(LABEL_NAMESPACE),
    re.escape(NAMESPACE_LABELS_PREFIX.rstrip(".")),
    re.escape("app.kubernetes.io"),
)
_IGNORE = (
    r"io\.kubernetes",
    r"kubernetes\.io",
    r"statefulset\.kubernetes\.io/pod-name",
    r"apps\.kubernetes\.io/pod-index",
    r"batch\.kubernetes\.io/job-completion-index",
    r"batch\.kubernetes\.io/controller-uid",
    r".*beta\.kubernetes\.io",
    r"k8s\.io",
    r"pod-template-generation",
    r"pod-template-hash",
    r"controller-revision-hash",
    r"annotation.*",
    r"controller-uid",
    r"etcd_node",
)
_INCLUDE_RE = tuple(re.compile(p) for p in _INCLUDE)
_IGNORE_RE = tuple(re.compile(p) for p in _IGNORE)


def is_identity_relevant(key: str) -> bool:
    """Whether a pod label with this key takes part in the pod's identity (Cilium's default filter)."""
    included = max((m.end() for r in _INCLUDE_RE if (m := r.match(key))), default=0)
    ignored = min((m.end() for r in _IGNORE_RE if (m := r.match(key))), default=0)
    return ignored == 0 or included > ignored


@dataclass(frozen=True, slots=True, order=True)
class Label:
    """One security label. Ordered by key first, as Cilium sorts them."""

    key: str
    value: str = ""
    source: str = SOURCE_K8S

    def __post_init__(self) -> None:
        if not self.key or any(c in self.key for c in ";=") or self.key.strip() != self.key:
            raise InvalidInput(f"label key {self.key!r} is not valid; use a Kubernetes label key.")
        if ";" in self.value:
            raise InvalidInput(f"label value {self.value!r} of {self.key} must not contain ';'.")
        if not self.source or ":" in self.source or self.source == SOURCE_ANY:
            raise InvalidInput(f"label source {self.source!r} of {self.key} is not valid; use k8s or reserved.")

    def __str__(self) -> str:
        return f"{self.source}:{self.key}={self.value}"


@dataclass(frozen=True, slots=True)
class LabelSet:
    """A set of security labels, at most one per key, kept sorted by key; hashable, so it can key maps."""

    labels: tuple[Label, ...] = ()

    def __post_init__(self) -> None:
        ordered = tuple(sorted(set(self.labels)))
        for a, b in pairwise(ordered):
            if a.key == b.key:
                raise InvalidInput(f"labels {a} and {b} share the key {a.key}; a label set holds one label per key.")
        object.__setattr__(self, "labels", ordered)

    @classmethod
    def of(cls, labels: Iterable[Label]) -> LabelSet:
        return cls(tuple(labels))

    @classmethod
    def from_mapping(cls, labels: Mapping[str, str], source: str = SOURCE_K8S) -> LabelSet:
        return cls(tuple(Label(k, v, source) for k, v in labels.items()))

    def __iter__(self) -> Iterator[Label]:
        return iter(self.labels)

    def __len__(self) -> int:
        return len(self.labels)

    def __str__(self) -> str:
        return ", ".join(str(label) for label in self.labels) or "(no labels)"

    def get(self, key: str, source: str = SOURCE_ANY) -> Label | None:
        """The label with this key; ``source`` ``any`` accepts whatever source it has."""
        for label in self.labels:
            if label.key == key and source in (SOURCE_ANY, label.source):
                return label
        return None

    def value(self, key: str, source: str = SOURCE_ANY) -> str | None:
        label = self.get(key, source)
        return None if label is None else label.value

    @property
    def cluster(self) -> str | None:
        """The cluster named by the ``k8s:io.cilium.k8s.policy.cluster`` label, if any."""
        return self.value(LABEL_CLUSTER, SOURCE_K8S)

    @property
    def namespace(self) -> str | None:
        return self.value(LABEL_NAMESPACE, SOURCE_K8S)

    @property
    def is_reserved(self) -> bool:
        return any(label.source == SOURCE_RESERVED for label in self.labels)

    def with_labels(self, *labels: Label) -> LabelSet:
        """A copy where the given labels replace any label with the same key."""
        keys = {label.key for label in labels}
        return LabelSet(tuple(label for label in self.labels if label.key not in keys) + labels)

    def to_cilium_key(self) -> str:
        """Cilium's kvstore form, e.g. ``k8s:app=baz;k8s:io.kubernetes.pod.namespace=foo;``."""
        return "".join(f"{label};" for label in self.labels)

    @classmethod
    def from_cilium_key(cls, text: str) -> LabelSet:
        """Parse the kvstore form (each item ends with ``;``); ``reserved:host`` without ``=`` is accepted."""
        if text and not text.endswith(";"):
            raise InvalidInput(f"identity key {text!r} does not end with ';'; it is not in Cilium's label form.")
        labels = []
        for item in text.split(";")[:-1]:
            source, colon, rest = item.partition(":")
            if not colon:
                raise InvalidInput(f"label {item!r} in identity key {text!r} has no source; write source:key=value.")
            key, _, value = rest.partition("=")
            labels.append(Label(key, value, source))
        return cls(tuple(labels))


def pod_security_labels(
    pod_labels: Mapping[str, str],
    namespace: str,
    cluster: str,
    service_account: str = "default",
    namespace_labels: Mapping[str, str] | None = None,
) -> LabelSet:
    """The identity labels Cilium gives a pod: relevant pod labels, namespace (and its labels), service
    account and cluster, all with source ``k8s``."""
    labels = {k: v for k, v in pod_labels.items() if is_identity_relevant(k)}
    for k, v in (namespace_labels or {}).items():
        labels[NAMESPACE_LABELS_PREFIX + k] = v
    labels[LABEL_NAMESPACE] = namespace
    labels[LABEL_SERVICE_ACCOUNT] = service_account
    labels[LABEL_CLUSTER] = cluster
    return LabelSet.from_mapping(labels, SOURCE_K8S)


def reserved_labels(name: str) -> LabelSet:
    """The label set of a reserved identity, e.g. ``reserved:host``."""
    return LabelSet((Label(name, "", SOURCE_RESERVED),))
