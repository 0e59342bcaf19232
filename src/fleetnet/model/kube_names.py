"""Kubernetes' rules for names, label keys and label values, as predicates and problem sentences.

The same rules as the API server's (``k8s.io/apimachinery/pkg/util/validation``): a name a real
cluster would refuse is refused here too, with the sentence that says what a valid one looks like.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_IANA_SVC_NAME = re.compile(r"^[-a-z0-9]+$")


def is_dns1123_label(s: str) -> bool:
    return len(s) <= 63 and bool(_DNS1123_LABEL.match(s))


def is_dns1123_subdomain(s: str) -> bool:
    return len(s) <= 253 and bool(_DNS1123_SUBDOMAIN.match(s))


def is_dns1035_label(s: str) -> bool:
    return len(s) <= 63 and bool(_DNS1035_LABEL.match(s))


def is_iana_svc_name(s: str) -> bool:
    """A named port (``IANA_SVC_NAME``): ≤ 15 chars, lower-case alphanumerics and '-', with a letter."""
    return (
        0 < len(s) <= 15
        and bool(_IANA_SVC_NAME.match(s))
        and re.search(r"[a-z]", s) is not None
        and "--" not in s
        and not s.startswith("-")
        and not s.endswith("-")
    )


def label_key_problem(key: str) -> str | None:
    """Why ``key`` is not a valid label or annotation key (``[prefix/]name``), or None."""
    prefix, _, name = key.rpartition("/")
    if "/" in key and not prefix:
        return "has an empty prefix before '/'"
    if prefix and not is_dns1123_subdomain(prefix):
        return f"has prefix {prefix!r}, which is not a DNS-1123 subdomain"
    if not name or len(name) > 63 or not _QUALIFIED_NAME.match(name):
        return (
            "must be at most 63 characters of letters, digits, '-', '_' and '.', "
            "starting and ending with a letter or digit, after an optional DNS prefix and '/'"
        )
    return None


def label_value_problem(value: str) -> str | None:
    if value and (len(value) > 63 or not _QUALIFIED_NAME.match(value)):
        return (
            "must be empty or at most 63 characters of letters, digits, '-', '_' and '.', "
            "starting and ending with a letter or digit"
        )
    return None


_LABEL_RULE = "use at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit"
_NAME_RULES: dict[str, tuple[Callable[[str], bool], str]] = {
    "label": (is_dns1123_label, _LABEL_RULE),
    "dns1035": (
        is_dns1035_label,
        "use at most 63 lower-case letters, digits and '-', starting with a letter and ending with a letter or digit",
    ),
    "subdomain": (
        is_dns1123_subdomain,
        "use at most 253 lower-case letters, digits, '-' and '.', each dot-separated part starting and ending "
        "with a letter or digit",
    ),
}
