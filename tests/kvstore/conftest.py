"""Fixtures: one PKI and one etcd per module (tests use their own key prefixes), fresh ones on request."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator

import pytest

from fleetnet.kvstore.client import EtcdClient
from tests.kvstore.etcd_harness import Etcd, Pki, make_pki, start_etcd, stop_etcd, temp_dir


@pytest.fixture(scope="module")
def pki() -> Iterator[Pki]:
    directory = temp_dir()
    try:
        yield make_pki(directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def etcd(pki: Pki) -> Iterator[Etcd]:
    server = start_etcd(pki)
    try:
        yield server
    finally:
        stop_etcd(server)


@pytest.fixture
def fresh_etcd(pki: Pki) -> Iterator[Etcd]:
    """An etcd of its own, for tests that kill it or change its users."""
    server = start_etcd(pki)
    try:
        yield server
    finally:
        stop_etcd(server)


@pytest.fixture
async def root(etcd: Etcd) -> AsyncIterator[EtcdClient]:
    client = await etcd.client("root")
    try:
        yield client
    finally:
        await client.close()
