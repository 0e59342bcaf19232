"""Shared fixtures. Tests needing root skip with a reason when not root (CI and make test run as root)."""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="needs root (network namespaces, etcd, eBPF)")
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip)
