"""Objects read from an API server as typed values, for every component that decides on them.

A thin alias of ``model.kube_read.read``: kept so that readers (agent, exporter) name one entry point.
"""

from __future__ import annotations

from typing import Any

from fleetnet.model.kube_read import read


def stored(obj: dict[str, Any]) -> Any:
    return read(obj)
