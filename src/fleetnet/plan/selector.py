"""The mesh member selector: ``k=v[,k=v]`` pairs only (Azure accepts only the '=' operator).

An empty selector selects nothing (not everything), as Azure documents.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from fleetnet.errors import InvalidInput

MAX_SELECTOR_LEN = 512
_KEY_RE = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
_VALUE_RE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")

Selector = tuple[tuple[str, str], ...]


def parse_selector(text: str) -> Selector:
    """Parse ``a=b,c=d`` into sorted pairs; refuse any other operator with one sentence."""
    if len(text) > MAX_SELECTOR_LEN:
        raise InvalidInput(f"member selector is {len(text)} characters long: the limit is {MAX_SELECTOR_LEN}.")
    text = text.strip()
    if not text:
        return ()
    pairs: dict[str, str] = {}
    for raw in text.split(","):
        term = raw.strip()
        if any(op in term for op in ("!=", "==", " in ", " notin ", "!")) or term.count("=") != 1:
            raise InvalidInput(
                f"member selector term {term!r} is not supported: only key=value pairs joined by ',' are accepted."
            )
        key, value = (s.strip() for s in term.split("=", 1))
        if not _KEY_RE.match(key):
            raise InvalidInput(f"member selector key {key!r} is not a valid label key.")
        if not _VALUE_RE.match(value):
            raise InvalidInput(f"member selector value {value!r} for key {key!r} is not a valid label value.")
        if key in pairs and pairs[key] != value:
            raise InvalidInput(f"member selector names key {key!r} twice with different values.")
        pairs[key] = value
    return tuple(sorted(pairs.items()))


def matches(selector: Selector, labels: Mapping[str, str]) -> bool:
    """True when every pair is present in labels; the empty selector matches nothing."""
    if not selector:
        return False
    return all(labels.get(k) == v for k, v in selector)


def format_selector(selector: Selector) -> str:
    return ",".join(f"{k}={v}" for k, v in selector)


def parse_labels(text: str) -> dict[str, str]:
    """Labels given on the command line as ``k=v,k2=v2`` (the empty string clears them)."""
    return dict(parse_selector(text)) if text.strip() else {}
