"""An etcd for the pki tests that need a TLS server, from the kvstore tests' harness."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.kvstore.etcd_harness import Etcd, make_pki, start_etcd, stop_etcd, temp_dir


@pytest.fixture(scope="module")
def etcd() -> Iterator[Etcd]:
    directory = temp_dir()
    try:
        server = start_etcd(make_pki(directory))
        try:
            yield server
        finally:
            stop_etcd(server)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
